"""The conditional WGAN: `ConditionalWGAN` (its train step), the generator and critic
networks, the critic's own layers, the Wasserstein losses and the weight clip."""
