"""Provides the staff API of experiments: the list, and one experiment's results with intervals and p-values."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from recommendations.experiments.models import Arm, Experiment
from recommendations.experiments.results import experiment_results


class ArmOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Arm
        fields = ("id", "name", "is_control", "share", "algorithm", "params", "build", "configuration")


class ExperimentOutputSerializer(serializers.ModelSerializer):
    arms = ArmOutputSerializer(many=True, read_only=True)
    winner = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = Experiment
        fields = ("id", "name", "slug", "kind", "surfaces", "start", "stop", "state", "winner", "arms")


class ExperimentListApi(APIView):
    """Staff: every experiment with its arms, newest first."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=ExperimentOutputSerializer(many=True))
    def get(self, request):
        experiments = Experiment.objects.prefetch_related("arms").select_related("winner")
        return Response(ExperimentOutputSerializer(experiments, many=True).data)


class ExperimentResultsApi(APIView):
    """Staff: an experiment's results: per arm and metric the value with its interval, the difference with the
    control with its interval, the fixed-horizon ``p_value`` and the always-valid ``sequential_p_value``; the
    sample-ratio-mismatch check (``srm``); for interleaving, the clicks credited per list with the readers-as-units
    test (``p_value``) and the readers' preferences with the sign test (``sign_p_value``)."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=OpenApiTypes.OBJECT, parameters=[OpenApiParameter("slug", str, OpenApiParameter.PATH)])
    def get(self, request, slug: str):
        experiment = get_object_or_404(Experiment, slug=slug)
        return Response(experiment_results(experiment).as_dict())
