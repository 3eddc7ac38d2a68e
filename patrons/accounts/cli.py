"""`flask --app patrons create-staff`: make a staff account."""

from __future__ import annotations

import secrets
import sys

import click
from flask.cli import with_appcontext

from patrons.core.db import session as db


@click.command("create-staff")
@with_appcontext
@click.argument("email")
@click.option("--password", envvar="STAFF_PASSWORD", help="Default: asked for, or generated.")
def create_staff(email: str, password: str | None) -> None:
    """Create a staff account for EMAIL, or make that account staff."""
    from patrons.accounts import audit, auth
    from patrons.accounts.passwords import password_problem

    try:
        email = auth.valid_email(email)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="EMAIL") from None
    existing = auth.find_user_by_email(db, email)
    generated = False
    if existing is None and not password:
        if sys.stdin.isatty():
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        else:
            password, generated = secrets.token_urlsafe(18), True
    if password is not None:
        name = existing.display_name if existing else None
        problem = password_problem(password, email=email, name=name, staff=True)
        if problem:
            raise click.BadParameter(problem, param_hint="--password")
    user, created = auth.create_or_promote_staff(db, email, password)
    db.flush()
    audit.record(db, "staff.role", user=user, detail={"via": "create-staff", "created": created})
    db.commit()
    click.echo(f"{'Created' if created else 'Promoted'} staff account {user.email}.")
    if generated:
        click.echo(f"Generated password: {password}")
