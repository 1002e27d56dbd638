"""Errors a user can cause. The command line prints them as one line and exits with code 2."""


class LmlabError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class MissingDependency(LmlabError):
    """An optional dependency is not installed; the message names the install command."""

    def __init__(self, package: str, extra: str | None = None, hint: str | None = None):
        cmd = hint or (f"pip install 'lmlab[{extra}]'" if extra else f"pip install {package}")
        super().__init__(f"{package} is not installed; install it with: {cmd}")
        self.package = package


def require(module: str, extra: str | None = None, hint: str | None = None):
    """Import an optional module, or raise MissingDependency naming how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependency(module.split(".")[0], extra, hint) from e
