"""WTForms classes: every form carries flask-wtf's CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DecimalField,
    FieldList,
    FormField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
)

from maosic.analysis.reward import MAX_CONFIRM
from maosic.db.models import Role
from maosic.db.passwords import MIN_PASSWORD_LENGTH
from maosic.plans import MAX_CSV_BYTES
from maosic.service import MAX_BUDGET, MAX_SEED  # the core's own bounds, checked here first

BOUND_MAX = 1e9  # no reaction variable (°C, mmol/mL, mL/min, s) comes near this
USERNAME_RULE = Regexp(
    r"^[A-Za-z0-9_.-]+$", message="use letters, digits, dot, dash or underscore only"
)


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


class RegisterForm(FlaskForm):
    username = StringField(
        "Username", validators=[DataRequired(), Length(min=3, max=64), USERNAME_RULE]
    )
    email = StringField("E-mail (optional)", validators=[Optional(), Length(max=255)])
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=256)]
    )
    confirm = PasswordField(
        "Repeat password", validators=[DataRequired(), EqualTo("password", "passwords differ")]
    )


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    password = PasswordField(
        "New password", validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=256)]
    )
    confirm = PasswordField(
        "Repeat new password", validators=[DataRequired(), EqualTo("password", "passwords differ")]
    )


class NotificationsForm(FlaskForm):
    """How the owner hears that a request ended or paused (maosic/notify.py)."""

    email = StringField(
        "E-mail address",
        validators=[
            Optional(),
            Length(max=255),
            # one @, no spaces: the SMTP server is the judge of the rest
            Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message="not an e-mail address"),
        ],
    )
    notify_email = BooleanField("E-mail me when a request finishes, fails, pauses or is cancelled")
    webhook_url = StringField("Webhook URL (optional)", validators=[Optional(), Length(max=500)])


class SpaceRow(FlaskForm):
    """One optimised variable: name, bounds and resolution (units of the variable)."""

    class Meta:
        csrf = False  # the enclosing form carries the token

    name = StringField("Variable", validators=[Optional(), Length(max=32)])
    # Decimal holds 1e400 exactly; as the float the core receives it would be infinity.
    low = DecimalField("Lower bound", validators=[Optional(), NumberRange(-BOUND_MAX, BOUND_MAX)])
    high = DecimalField("Upper bound", validators=[Optional(), NumberRange(-BOUND_MAX, BOUND_MAX)])
    dx = DecimalField("Resolution", validators=[Optional(), NumberRange(0, BOUND_MAX)])


PLANS = [
    SelectChoice("optimizer", "the optimizer"),
    SelectChoice("points", "me: a list of points"),
    SelectChoice("full_factorial", "a full-factorial design"),
    SelectChoice("one_factor_at_a_time", "a one-factor-at-a-time design"),
]
SOURCES = [
    SelectChoice("stored", "A stored reaction"),
    SelectChoice("formula", "A formula"),
    SelectChoice("upload", "A file"),
]


class RequestForm(FlaskForm):
    source = SelectField("Reaction from", choices=SOURCES, default="stored")
    reaction_id = SelectField("Stored reaction", coerce=int, validate_choice=False)
    name = StringField("Name of the request", validators=[Optional(), Length(max=128)])
    formula = TextAreaField("Formula", validators=[Optional(), Length(max=20_000)])
    config_file = FileField("Configuration (JSON) or formula file")
    # six rows: the shipped formula files carry up to six vary/fix lines (Cs3Cu2I5)
    space = FieldList(FormField(SpaceRow), min_entries=6, max_entries=8)
    metric = SelectField("Target", validate_choice=False)
    budget = IntegerField(
        "Budget (experiments)", validators=[InputRequired(), NumberRange(min=1, max=MAX_BUDGET)]
    )
    optimizer = SelectField("Optimizer", validate_choice=False)
    seed = IntegerField(
        "Random seed", default=0, validators=[Optional(), NumberRange(min=0, max=MAX_SEED)]
    )
    # Who chooses the experiments (maosic/plans.py): the optimizer, or a list / design a
    # person gives (run as written, no optimizer; the budget is then the number of points).
    plan = SelectField("Experiments chosen by", choices=PLANS, default="optimizer")
    points_text = TextAreaField(
        "Points (CSV: a header of variable names, one point per line)",
        validators=[Optional(), Length(max=MAX_CSV_BYTES)],
    )
    points_file = FileField("or a CSV file of points")
    levels = IntegerField(
        "Levels per variable", default=3, validators=[Optional(), NumberRange(min=2, max=21)]
    )
    # A whole target as JSON (a weighted sum, a calibrated PLQY, ...): replaces the target list
    target_json = TextAreaField(
        "Target as JSON (optional; replaces the choice above)",
        validators=[Optional(), Length(max=4000)],
    )
    # The goal, judged on the mean of the best and ``confirm`` replicates of it.
    goal = DecimalField("Goal (reward)", validators=[Optional(), NumberRange(-1e12, 1e12)])
    confirm = IntegerField(
        "Confirm the goal with replicates",
        validators=[Optional(), NumberRange(min=1, max=MAX_CONFIRM)],
    )


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice(r.value, r.value) for r in Role])
    active = BooleanField("Active")
