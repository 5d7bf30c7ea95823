"""Only what pyproject.toml cannot say: ship the top-level `themes/` folder
inside the package, as `monitor/themes/`.

The theme files stay in `themes/` at the top of the repository (where users
and the docs look for them); a wheel built from it (`pip install .`, `pipx
install`) carries a copy under the package, which `monitor.ui.themes` reads.
An editable install reads `themes/` itself, so nothing is copied then.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

THEMES = Path(__file__).resolve().parent / "themes"


class BuildWithThemes(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "monitor" / "themes"
        target.mkdir(parents=True, exist_ok=True)
        for source in sorted(THEMES.glob("*.toml")):
            self.copy_file(str(source), str(target / source.name))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            target = Path(self.build_lib) / "monitor" / "themes"
            outputs += [str(target / p.name) for p in sorted(THEMES.glob("*.toml"))]
        return outputs


setup(cmdclass={"build_py": BuildWithThemes})
