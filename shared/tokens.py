"""Prints a development token: `make token ROLE=zone SCOPE=ipz10`."""

from __future__ import annotations

import argparse
import sys

from shared.auth import ROLES, issue_token
from shared.settings import ServiceSettings


def main() -> None:
    """Signs a token with the key of the settings (the development key locally)."""
    parser = argparse.ArgumentParser(prog="make token")
    parser.add_argument("--role", required=True, help=" | ".join(ROLES))
    parser.add_argument("--scope", default="", help="zone code, BIN id or member id")
    args = parser.parse_args()
    try:
        token = issue_token(
            secret=ServiceSettings().jwt_secret, role=args.role, scope=args.scope
        )
    except ValueError as error:
        sys.exit(f"make token: {error}")
    sys.stdout.write(token + "\n")


if __name__ == "__main__":
    main()
