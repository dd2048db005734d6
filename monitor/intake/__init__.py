"""Reading outside files into events: CSV rows, encodings, batches."""
