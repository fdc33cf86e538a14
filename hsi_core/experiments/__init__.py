"""Paper experiments built on the generic library (``hsi_core.training`` and the models):
``hsi_tables``: HSI pretraining, five-fold finetuning and HSI Tables 1-3."""
