"""Wasserstein losses: plain means of critic scores, no sigmoid and no log.

The critic f maximises E[f(real)] - E[f(fake)], an estimate of the Wasserstein-1 distance
between the data and the generator's distribution (up to the Lipschitz constant the clip
imposes); the generator minimises -E[f(fake)].
"""

import keras


def wasserstein_critic_loss(real_scores, fake_scores):
    """mean(f(fake)) - mean(f(real)); its negative is the Wasserstein estimate."""
    return keras.ops.mean(fake_scores) - keras.ops.mean(real_scores)


def wasserstein_generator_loss(fake_scores):
    """-mean(f(fake)): the generator raises the critic's score of its samples."""
    return -keras.ops.mean(fake_scores)
