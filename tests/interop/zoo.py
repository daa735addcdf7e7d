"""Small models that call many kinds of layers, functions and methods, for the converter tests.
The importer runs this file, so it imports nothing from DL Studio."""

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class Images(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, (3, 5), stride=(1, 2), padding=(1, 2), groups=1, bias=False)
        self.norm = nn.GroupNorm(2, 8)
        self.act = nn.PReLU(8)
        self.pad = nn.ZeroPad2d((1, 0, 1, 0))
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.shuffle = nn.PixelShuffle(2)
        self.head = nn.AdaptiveMaxPool2d((2, 1))
        self.instance = nn.InstanceNorm2d(2, affine=True)

    def forward(self, x):
        y = self.pool(self.pad(self.act(self.norm(self.conv(x)))))
        y = F.interpolate(self.up(y), scale_factor=0.5, mode="nearest")
        y = self.instance(self.shuffle(y))
        a, b = y.chunk(2, dim=1)
        y = torch.cat([F.max_pool2d(a, 2), F.adaptive_avg_pool2d(b, (9, 5))], 1)
        y = F.leaky_relu(y, 0.2).permute(0, 2, 3, 1).mean(dim=(1, 2))
        return F.softmax(self.head(x).flatten(1).unsqueeze(1) * y.sum(-1, keepdim=True).unsqueeze(-1), dim=-1)


class Sequences(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(6, 8, batch_first=True, bidirectional=True)
        self.rnn = nn.RNN(16, 4, nonlinearity="relu")
        self.conv = nn.Conv1d(4, 4, 3, padding="same", padding_mode="replicate")
        self.bn = nn.BatchNorm1d(4, momentum=None)
        self.norm = nn.LayerNorm([7, 4], elementwise_affine=True, bias=False)
        self.softmax = nn.Softmax()

    def forward(self, x, h):
        out, _ = self.gru(x, h.transpose(0, 1).contiguous())
        out, _ = self.rnn(out.transpose(0, 1))
        y = self.bn(self.conv(out.permute(1, 2, 0)))
        y = self.norm(y.transpose(1, 2))
        return self.softmax(F.gelu(y, approximate="tanh").reshape(-1, 28)), torch.tanh(y[..., 0])
