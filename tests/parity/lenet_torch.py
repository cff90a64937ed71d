"""LeNet-5 in PyTorch, as the tutorial "training a neural network" writes it:
the twin of models/lenet.nn (32x32 input, conv1_padding=0) and of
models/lenet_ce.nn (28x28 input, padded by conv1: conv1_padding=2). The
parity tests share it."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet(nn.Module):
    def __init__(self, conv1_padding=0):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=conv1_padding)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
