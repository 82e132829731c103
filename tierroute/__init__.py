"""tierroute: route each prompt to the cheapest Claude tier that answers it well."""

__version__ = "0.1.0"
