"""Build step of the wheel: the course notebooks travel inside the package (the rest is in pyproject.toml).

``notebooks/NN_*.ipynb`` (student copies) and ``solutions/NN_*.ipynb`` are copied to
``course_utils/course_notebooks/{notebooks,solutions}/`` of the built package, where ``course-notebooks copy``
finds them once the wheel is installed. Editable installs use the checkout's folders and copy nothing.
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithNotebooks(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for folder in ("notebooks", "solutions"):
            notebooks = sorted((HERE / folder).glob("[0-9][0-9]_*.ipynb"))
            if not notebooks:
                raise FileNotFoundError(f"no {folder}/NN_*.ipynb beside setup.py: the wheel must carry the notebooks.")
            target = Path(self.build_lib) / "course_utils" / "course_notebooks" / folder
            self.mkpath(str(target))
            for notebook in notebooks:
                self.copy_file(str(notebook), str(target / notebook.name))


setup(cmdclass={"build_py": BuildPyWithNotebooks})
