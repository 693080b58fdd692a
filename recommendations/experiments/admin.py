"""Provides the admin of experiments: editors define an experiment and its arms, read its results and promote a winner.

The arms are an inline whose formset checks the whole experiment (``validation.experiment_problems``):
shares sum to 1, interleaving has exactly two arms, the start comes before the stop. The results page
(``<admin>/recommendations/experiment/<id>/results/``) shows every metric per arm with its interval, the
difference with the control with its fixed-horizon and always-valid p-values, the sample-ratio-mismatch
warning and the guardrails; a button per arm promotes it (POST, *change experiment* permission).
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from ..build.errors import BuildAlreadyRunning
from ..tasks import full_build_start
from .models import Arm, Experiment
from .promote import experiment_promote, experiment_stop
from .results import GUARDRAILS, METRICS, PRIMARY, experiment_results
from .validation import ArmSpec, experiment_problems


class ArmFormSet(forms.BaseInlineFormSet):
    """Check the experiment's arms together, with the experiment's kind and dates from the parent form."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        arms = [ArmSpec(f.cleaned_data.get("name", ""), f.cleaned_data.get("share") or 0.0,
                        bool(f.cleaned_data.get("is_control")), f.cleaned_data.get("algorithm", ""),
                        f.cleaned_data.get("params") or {},
                        getattr(f.cleaned_data.get("build"), "pk", None))
                for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        problems = experiment_problems(kind=self.instance.kind, start=self.instance.start, stop=self.instance.stop,
                                       arms=arms)
        if problems:
            raise ValidationError(problems)


class ArmInline(admin.TabularInline):
    model = Arm
    formset = ArmFormSet
    fk_name = "experiment"
    extra = 2
    fields = ("name", "is_control", "share", "algorithm", "params", "build")


class ExperimentForm(forms.ModelForm):
    class Meta:
        model = Experiment
        fields = ("name", "slug", "kind", "surfaces", "start", "stop", "state", "salt")

    def clean(self):
        data = super().clean()
        start, stop = data.get("start"), data.get("stop")
        if start and stop and not start < stop:
            raise ValidationError("The start must come before the stop.")
        surfaces = data.get("surfaces")
        if surfaces is not None and (not isinstance(surfaces, list) or not all(isinstance(s, str) for s in surfaces)):
            self.add_error("surfaces", 'A JSON list of surface names, e.g. ["home", "api:recommendations"].')
        return data


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    form = ExperimentForm
    inlines = [ArmInline]
    list_display = ("name", "slug", "kind", "state", "start", "stop", "results_link")
    list_filter = ("state", "kind")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    actions = ["start_experiments", "stop_experiments"]

    @admin.display(description="results")
    def results_link(self, obj):
        return format_html('<a href="{}">Results</a>', reverse("admin:recommendations_experiment_results",
                                                              args=[obj.pk]))

    @admin.action(description="Start the selected experiments and queue a build (it fits their arms)",
                  permissions=["change"])
    def start_experiments(self, request, queryset):
        queryset.update(state=Experiment.State.RUNNING)
        for experiment in queryset:
            experiment.save(update_fields=["state"])  # the signals: forget the cached live experiments
        try:
            build = full_build_start(triggered_by="experiment")
        except BuildAlreadyRunning as exc:
            self.message_user(request, f"Started; {exc} Its arms are served after the next build.", messages.WARNING)
        else:
            self.message_user(request, f"Started; build #{build.pk} is queued: readers are assigned once it "
                                       "has fitted the arms.", messages.SUCCESS)

    @admin.action(description="Stop the selected experiments (serve the default)", permissions=["change"])
    def stop_experiments(self, request, queryset):
        for experiment in queryset:
            experiment_stop(experiment=experiment)
        self.message_user(request, f"Stopped {queryset.count()} experiment(s).", messages.SUCCESS)

    def get_urls(self):
        return [
            path("<int:pk>/results/", self.admin_site.admin_view(self.results_view),
                 name="recommendations_experiment_results"),
            path("<int:pk>/promote/<int:arm_pk>/", self.admin_site.admin_view(self.promote_view),
                 name="recommendations_experiment_promote"),
            *super().get_urls(),
        ]

    def results_view(self, request, pk: int):
        """Show each metric per arm with its interval, p-values, the SRM warning and the guardrails."""
        experiment = get_object_or_404(Experiment, pk=pk)
        if not self.has_view_permission(request, experiment):
            raise PermissionDenied
        results = experiment_results(experiment)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Results of {experiment.name}",
            "opts": self.opts,
            "experiment": experiment,
            "results": results,
            "tables": [(metric, metric in GUARDRAILS, metric == PRIMARY,
                        [(arm, arm.metrics[metric]) for arm in results.arms if metric in arm.metrics])
                       for metric in METRICS],
            "arms": sorted(experiment.arms.all(), key=lambda a: a.pk),
            "can_promote": self.has_change_permission(request, experiment),
        }
        return TemplateResponse(request, "admin/recommendations/experiment/results.html", context)

    def promote_view(self, request, pk: int, arm_pk: int):
        """Promote one arm to the default configuration (POST only)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        experiment = get_object_or_404(Experiment, pk=pk)
        if not self.has_change_permission(request, experiment):
            raise PermissionDenied
        arm = get_object_or_404(Arm, pk=arm_pk, experiment=experiment)
        outcome = experiment_promote(experiment=experiment, arm=arm)
        self.message_user(request, f"Promoted {arm.name}. {outcome}", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:recommendations_experiment_results", args=[pk]))
