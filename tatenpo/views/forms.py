"""The forms of the import screens (販売取込, 未紐付け, 在庫CSV), and `strip`, the filter every form's text
fields share. CSRF comes with FlaskForm."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from tatenpo.listings import detect, generic


def strip(value):
    """A field filter: the text without the spaces around it (pasted values often carry them)."""
    return value.strip() if isinstance(value, str) else value


def format_choices() -> list[SelectChoice]:
    return [SelectChoice("", _l("Recognise automatically"))] + [SelectChoice(f.name, f.label) for f in detect.FORMATS]


class UploadForm(FlaskForm):
    store_id = SelectField(_l("EC site"), coerce=int, validators=[DataRequired(_l("Choose the EC site."))])
    files = MultipleFileField(_l("CSV file(s)"))
    format = SelectField(_l("Format"), choices=[], default="")
    create_products = BooleanField(_l("Create products that do not exist yet (starting stock = the CSV's stock)"), default=True)


class OptionsForm(FlaskForm):
    scope = RadioField(
        _l("What to import"),
        choices=[SelectChoice("all", _l("Every listing in the file")),
                 SelectChoice("first", _l("Only the first items (try with one or a few first)")),
                 SelectChoice("items", _l("Only these items"))],
        default="all",
    )
    first_items = IntegerField(_l("Number of items"), default=1, validators=[Optional(), NumberRange(min=1, max=100000)])
    items = TextAreaField(_l("Item codes (one per line)"), validators=[Optional(), Length(max=20000)])
    create_products = BooleanField(_l("Create products that do not exist yet (starting stock = the CSV's stock)"))


class ConfirmForm(FlaskForm):
    pass


class MappingForm(FlaskForm):
    item_code = SelectField(generic.FIELD_LABELS["item_code"], validators=[DataRequired(_l("Choose the column of the item code."))])
    variant_code = SelectField(generic.FIELD_LABELS["variant_code"])
    code = SelectField(generic.FIELD_LABELS["code"])
    title = SelectField(generic.FIELD_LABELS["title"])
    quantity = SelectField(generic.FIELD_LABELS["quantity"])


class StockUploadForm(FlaskForm):
    files = MultipleFileField(_l("Stock CSV (商品コード, 在庫数)"))


class OrderImportForm(FlaskForm):
    """受注取込 (views/order_import.py): a mall's order CSV for one store."""

    store_id = SelectField(_l("EC site"), coerce=int, validators=[DataRequired(_l("Choose the EC site."))])
    files = MultipleFileField(_l("Order CSV file(s) (Yahoo: the orders and items files, or their zip)"))


class LinkForm(FlaskForm):
    product_code = StringField(_l("商品コード"), validators=[DataRequired(_l("Enter a 商品コード.")), Length(max=255)])


class CreateForm(FlaskForm):
    code = StringField(_l("商品コード"), validators=[DataRequired(_l("Enter a 商品コード.")), Length(max=255)])
    name = StringField(_l("Product name"), validators=[Length(max=500)])
    on_hand = StringField(_l("Starting stock"), default="0")
    next = HiddenField()
