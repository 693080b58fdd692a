"""Provides the forms of the site's pages: search, rating, beacon and sign-up."""
from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm


class ItemSearchForm(forms.Form):
    """The search box and tag filter of the article and book lists."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    tag = forms.SlugField(required=False, max_length=120, label="Tag")


class RatingForm(forms.Form):
    """1-5 stars, as radio buttons so the control works with the keyboard and without JavaScript."""

    stars = forms.TypedChoiceField(
        choices=[(n, f"{n} star{'s' if n > 1 else ''}") for n in range(1, 6)],
        coerce=int,
        widget=forms.RadioSelect,
        label="Your rating",
        error_messages={
            "required": "Choose from 1 to 5 stars.",
            "invalid_choice": "stars must be a whole number from 1 to 5, not %(value)s.",
        },
    )


class ReadBeaconForm(forms.Form):
    """What the page script reports when the reader leaves: seconds visible and how far they scrolled."""

    dwell_seconds = forms.FloatField(required=False, min_value=0)
    progress = forms.FloatField(required=False, min_value=0, max_value=1)


class SignupForm(UserCreationForm):
    """Django's sign-up form with labels that read well on our page."""

    class Meta(UserCreationForm.Meta):
        fields = ("username",)
