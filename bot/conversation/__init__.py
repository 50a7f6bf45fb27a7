"""The message path: ingest (persist first), the inbound work list, the pipeline that
decides and commits each conversation's messages in order, the outbox and its pacing,
the reconciler, history, and the operator actions on parked messages."""
