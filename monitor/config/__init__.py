"""Config model, loading with validation, and lookup of the config file."""

from monitor.config.load import ConfigError, Problem, load_config, parse_config
from monitor.config.model import Config, DemoSettings, Settings, Target

__all__ = ["Config", "ConfigError", "DemoSettings", "Problem", "Settings", "Target",
           "load_config", "parse_config"]
