"""Inside the container, on cluster engines that place the nodes but lay out no /opt/ml (AWS Batch,
Kubernetes): ``job`` reads the job spec, lays out this node's /opt/ml and writes the model. What the
engines are given to start such a job is the host side's ``smlocal export`` (``runtime/export.py``).
"""
