"""An example project's package: its task module is ``shop.jobs``."""
