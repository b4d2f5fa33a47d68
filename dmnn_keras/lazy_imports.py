"""Package names that load on first use (PEP 562), so that importing the package stays light."""

import importlib
import importlib.util
import sys


def lazy_attributes(package, names):
    """`__getattr__` and `__dir__` for a package whose `names` import on first access.

    `from package import name`, `package.name` and `dir(package)` behave as if
    the package had imported them; the first access imports the module and
    caches the value in the package. Any other submodule of the package also
    loads on access (`package.submodule`), as after an eager import.

    Args:
        package: the package's `__name__`, e.g. "dmnn_keras".
        names: `{name: module}`: the module to import for each name; the
            value is the module itself when it is `package.name`, else the
            module's attribute `name`.

    Returns:
        `(__getattr__, __dir__)` to assign at the package's module level.
    """

    def __getattr__(name):
        if name in names:
            module = importlib.import_module(names[name])
            value = module if module.__name__ == f"{package}.{name}" else getattr(module, name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}"):
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
