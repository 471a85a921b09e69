"""The SageMaker API face: ``smlocal api`` answers boto3, the AWS CLI and the sagemaker SDK on loopback.

``app`` dispatches each request (SageMaker JSON 1.1, SageMaker Runtime, CloudWatch Logs reads, and
moto for S3/STS); ``protocol`` holds the wire format and errors; one module per resource (``training``,
``models``, ``endpoints``, ``transform``, ``logs``) translates requests to the runtime and back;
``store`` keeps the records under the state dir; ``session`` builds clients of a running server
(``smlocal.sagemaker_session()``).
"""

