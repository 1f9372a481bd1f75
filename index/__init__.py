"""The offline side: catalog ingestion, index build and publish, evaluation."""
