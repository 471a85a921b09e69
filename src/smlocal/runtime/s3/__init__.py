"""S3 for channels and outputs, one concern per module: ``uri`` (parsing, pure), ``errors`` (botocore ->
smlocal errors), ``client`` (the lazily made boto3 client), ``objects`` (list, stream, head, upload) and
``cache`` (File-mode downloads). Import the submodule you need; none imports boto3 until it is used."""
