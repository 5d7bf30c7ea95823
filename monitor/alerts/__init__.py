"""Alerts: channels (apprise, webhook, command, bell), the policy that
decides who is told what (thresholds, recovery, reminders, certificates,
dependencies, maintenance windows), and the engine sink that runs them."""

from monitor.alerts.maintenance import ActiveWindow, Calendar, in_maintenance
from monitor.alerts.message import Alert
from monitor.alerts.policy import Clock, Policy
from monitor.alerts.sink import AlertSink, Delivery, alert_sink

__all__ = ["ActiveWindow", "Alert", "AlertSink", "Calendar", "Clock", "Delivery", "Policy",
           "alert_sink", "in_maintenance"]
