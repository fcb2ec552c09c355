.PHONY: install lint test demo check

install:
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]'

lint:
	.venv/bin/ruff check bot handlers sandbox tests bench
	.venv/bin/ruff format --check bot handlers sandbox tests bench
	.venv/bin/mypy

test:
	.venv/bin/python -m pytest -q -n 2

demo:
	.venv/bin/python -m bot demo

check: lint test
