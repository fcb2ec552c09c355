"""A faithful local emulation of the RingCentral platform, for tests, benchmarks and `demo`.

Entry points: `sandbox.runner.start_sandbox()` (a running server with `.url` and
`.world`), `sandbox.app.create_sandbox_app()` (for `aiohttp_client`), `python -m sandbox`,
and the fixed credentials in `sandbox.defaults`. The control API lives under `/_sandbox/`.
`bot/` and `handlers/` must not import this package (only the `demo` command does).
"""
