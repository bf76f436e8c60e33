"""The lab: the research behind notebooks 05 and 06 and the appendices, kept apart from the course.

* ``networks``: the seed network's variations (input treatments, BatchNormalization after convolutions,
  augmentation, VGG-style bodies, pooling first), label smoothing, the one-cycle schedule, FLOPs;
* ``ablation``: notebook 05's ladder of one change at a time, chosen on validation; ensembles;
* ``published``: notebook 05's shipped, checksummed predictions;
* ``pipelines``: the ``tf.data`` pipeline notebook 06 measures (autotuner on or off);
* ``benchmark``: training speed and time to accuracy (``python -m fmnist_utils.lab.benchmark``);
* ``speed``: notebook 06's tables from the committed measurements;
* ``figures``: the ladder's chart, the seed's 2017 log, notebook 06's timing figures;
* ``releases``, ``numerics``: why the seed reported 0.9323 (the dataset's first release; 2017 numerics).
"""
