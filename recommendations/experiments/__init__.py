"""Provides online experiments: A/B tests and team-draft interleaving of recommendation configurations.

``models`` holds the experiments, their arms, the arms' stored lists and the promoted default;
``assignment`` places a reader in an arm (sticky, by a salted hash); ``picks`` computes each arm's
lists during a build; ``serving`` chooses the list a reader sees; ``results`` reads the impressions
and computes each arm's metrics with ``recommendations.algorithms.experiments_stats``; ``promote``
makes a winner the default.
"""
