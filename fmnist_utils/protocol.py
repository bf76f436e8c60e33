"""The experiment's numbers, defined once: the 2017 seed's protocol and results, and the targets set for it.

Every other module and notebook imports these instead of repeating them.
"""

#: Test accuracy the 2017 seed notebook reported.
SEED_RESULTS = {"mnist": 0.9942, "fashion_mnist": 0.9323}
#: The seed's parameter count.
SEED_TOTAL_PARAMS = 1_879_098
#: The seed's training protocol: epochs, batch size, Adam's learning rate and its legacy ``decay``.
SEED_EPOCHS = 30
SEED_BATCH_SIZE = 256
SEED_LEARNING_RATE = 1e-3
SEED_DECAY = 1e-3
#: The seed's hold-out split: ``train_test_split(test_size=0.15, random_state=...)`` per dataset.
VAL_FRACTION = 0.15
SEED_SPLIT_RANDOM_STATE = {"fashion_mnist": 200, "mnist": 80}
#: Peak learning rate of notebook 05's and 06's one-cycle schedule.
ONE_CYCLE_PEAK_LR = 2e-3
#: Notebook 05's targets: test accuracy of the best recipe chosen on validation.
BEYOND_TARGETS = {"fashion_mnist": 0.940, "mnist": 0.9960}
#: Notebook 06's targets per recipe: (Fashion-MNIST test accuracy, mean over seeds; training minutes).
SPEED_TARGETS = {
    "fast": (0.9323, 5.0),
    "fast_lite": (0.9323, 5.0),
    "fast_pool_first": (0.9323, 5.0),
    "accurate": (0.940, 15.0),
}
#: Notebook 06's throughput target: images/s of its fastest configuration against the plain port.
THROUGHPUT_TARGET = 1.8
