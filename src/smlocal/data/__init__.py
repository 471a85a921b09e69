"""The data plane: RecordIO framing, ``aialgs.data.Record`` <-> numpy, CSV, channels, and the data tools."""
