"""Provides ``{% pagefragment %}``: a part of a page cached until what it shows changes."""
from __future__ import annotations

from django import template
from django.utils.safestring import mark_safe

from ..page_cache import fragment_key, fragment_render

register = template.Library()


class PageFragmentNode(template.Node):
    def __init__(self, nodelist, name, per_user: bool, vary: list) -> None:
        self.nodelist, self.name, self.per_user, self.vary = nodelist, name, per_user, vary

    def render(self, context) -> str:
        request = context.get("request")
        if request is None:
            return self.nodelist.render(context)
        key = fragment_key(request, self.name.resolve(context), per_user=self.per_user,
                           vary=tuple(v.resolve(context) for v in self.vary))

        def render(csrf_token: str) -> str:
            with context.push(csrf_token=csrf_token):
                return self.nodelist.render(context)

        return mark_safe(fragment_render(request, key, render))


@register.tag
def pagefragment(parser, token):
    """
    Cache the enclosed template until the active build, the items or (``per_user``) the reader change.

    The key also holds the request's full path and the ``vary`` values. ``per_user`` fragments
    are the reader's own; the others are shared by everyone, so they must not show anything
    about the reader. Forms inside may use ``{% csrf_token %}``: each response gets its own token.

    Syntax::

        {% pagefragment "name" [per_user] [vary value ...] %} ... {% endpagefragment %}

    Example usage::

        {% load page_cache %}
        {% pagefragment "home" per_user %}{% recommended_for user as picks %}...{% endpagefragment %}
    """
    bits = token.split_contents()
    if len(bits) < 2:
        raise template.TemplateSyntaxError("pagefragment needs a name: {% pagefragment \"name\" %}.")
    name = parser.compile_filter(bits[1])
    per_user, vary, rest = False, [], bits[2:]
    if rest and rest[0] == "per_user":
        per_user, rest = True, rest[1:]
    if rest:
        if rest[0] != "vary" or len(rest) < 2:
            raise template.TemplateSyntaxError(f"pagefragment: expected 'per_user' or 'vary value ...', got {rest!r}.")
        vary = [parser.compile_filter(bit) for bit in rest[1:]]
    nodelist = parser.parse(("endpagefragment",))
    parser.delete_first_token()
    return PageFragmentNode(nodelist, name, per_user, vary)
