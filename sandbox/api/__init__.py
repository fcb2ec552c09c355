"""The emulated platform REST API, one module per area."""
