"""The weekly summary managers read: figures, lists, a chart, advice, in English or Persian."""
