"""Paper experiments built on the generic library (``hsi_core.training`` and the models):
``hsi_tables``: HSI pretraining, five-fold finetuning and HSI Tables 1-3;
``xai_benchmark``: HSI Table 4, the XAI methods ranked against HSI maps, and its readings;
``saliency_models``: LG Tables I-IV's deep models, trained on SALICON train with SALICON val for
model selection (or NUS Scene at demo scale);
``small_cnn``: the demo classifier explained at demo scale."""
