"""The host runtime: SageMaker's training jobs, endpoints and batch transforms run on this machine.

A job spec (``jobspec``) becomes a pure per-host plan (``plan``) over the channels ``sources`` lists;
``jobs`` runs the hosts on an execution backend (``backends``: ``process`` or ``docker``) and keeps the
job's record (``records``); ``endpoint`` and ``transform`` serve a model; ``commands`` is their CLI.
"""
