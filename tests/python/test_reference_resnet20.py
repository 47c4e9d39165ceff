"""One full ResNet-20 training step of the engine checked against an independent NumPy
implementation (float64) written here: forward in training mode (batch-norm batch statistics),
cross-entropy, backward to every parameter, the BN running-statistics update and an SGD step.
Nothing here calls engine code except to read the initial weights and to run the engine's step."""

import numpy as np
import pytest

import samix

EPS = 1e-5


# ----------------------------------------------------------------------------- NumPy layers
def conv_fwd(x, w, stride, pad):
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((n, c, k, k, ho, wo))
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = xp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
    out = np.einsum("ncijhw,ocij->nohw", cols, w)

    def back(dout):
        dw = np.einsum("nohw,ncijhw->ocij", dout, cols)
        dcols = np.einsum("nohw,ocij->ncijhw", dout, w)
        dxp = np.zeros_like(xp)
        for i in range(k):
            for j in range(k):
                dxp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += dcols[:, :, i, j]
        return dxp[:, :, pad:pad + h, pad:pad + wd], dw
    return out, back


def bn_fwd(x, g, b):
    mu = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    inv = 1 / np.sqrt(var + EPS)
    xhat = (x - mu[None, :, None, None]) * inv[None, :, None, None]
    out = g[None, :, None, None] * xhat + b[None, :, None, None]
    m = x.shape[0] * x.shape[2] * x.shape[3]

    def back(dy):
        db = dy.sum(axis=(0, 2, 3))
        dg = (dy * xhat).sum(axis=(0, 2, 3))
        dx = (g * inv)[None, :, None, None] * (dy - db[None, :, None, None] / m - xhat * dg[None, :, None, None] / m)
        return dx, dg, db
    return out, back, mu, x.var(axis=(0, 2, 3), ddof=1)


def relu_fwd(x):
    mask = x > 0
    return x * mask, lambda dy: dy * mask


def shortcut_a(x, cout, stride):
    n, cin, h, w = x.shape
    before = (cout - cin) // 2
    sub = x[:, :, ::stride, ::stride]
    out = np.zeros((n, cout) + sub.shape[2:])
    out[:, before:before + cin] = sub

    def back(dy):
        dx = np.zeros_like(x)
        dx[:, :, ::stride, ::stride] = dy[:, before:before + cin]
        return dx
    return out, back


class NumpyResNet20:
    """He et al. ResNet-20 (option A) with parameters taken from a samix state dict."""

    def __init__(self, state):
        self.p = {k: v.astype(np.float64) for k, v in state.items()}
        self.grads = {k: np.zeros_like(v) for k, v in self.p.items() if "running" not in k}
        self.stats = {}

    def conv_bn(self, x, prefix_conv, prefix_bn, stride, tape):
        y, cb = conv_fwd(x, self.p[prefix_conv + ".weight"], stride, 1)
        z, bb, mu, var_unbiased = bn_fwd(y, self.p[prefix_bn + ".weight"], self.p[prefix_bn + ".bias"])
        self.stats[prefix_bn] = (mu, var_unbiased)

        def back(dz):
            dy, dg, db = bb(dz)
            self.grads[prefix_bn + ".weight"] += dg
            self.grads[prefix_bn + ".bias"] += db
            dx, dw = cb(dy)
            self.grads[prefix_conv + ".weight"] += dw
            return dx
        return z, back

    def loss_and_backward(self, x, y):
        h, b_stem = self.conv_bn(x, "backbone.conv1", "backbone.bn1", 1, None)
        h, r_stem = relu_fwd(h)
        block_backs = []
        cin = 16
        for s, cout in enumerate([16, 32, 64]):
            for blk in range(3):
                stride = 2 if (s > 0 and blk == 0) else 1
                pre = f"backbone.layer{s + 1}.{blk}"
                a, b1 = self.conv_bn(h, pre + ".conv1", pre + ".bn1", stride, None)
                a, r1 = relu_fwd(a)
                c, b2 = self.conv_bn(a, pre + ".conv2", pre + ".bn2", 1, None)
                if stride == 1 and cin == cout:
                    sc, sb = h, (lambda d: d)
                else:
                    sc, sb = shortcut_a(h, cout, stride)
                out, r2 = relu_fwd(c + sc)
                block_backs.append((b1, r1, b2, sb, r2))
                h = out
                cin = cout
        feat = h.mean(axis=(2, 3))
        W, bias = self.p["head.fc.weight"], self.p["head.fc.bias"]
        logits = feat @ W.T + bias
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        n = x.shape[0]
        loss = -logp[np.arange(n), y].mean()
        # backward
        dlogits = np.exp(logp)
        dlogits[np.arange(n), y] -= 1
        dlogits /= n
        self.grads["head.fc.weight"] += dlogits.T @ feat
        self.grads["head.fc.bias"] += dlogits.sum(axis=0)
        dfeat = dlogits @ W
        hh, ww = h.shape[2], h.shape[3]
        dh = np.repeat(np.repeat(dfeat[:, :, None, None], hh, axis=2), ww, axis=3) / (hh * ww)
        for b1, r1, b2, sb, r2 in reversed(block_backs):
            dsum = r2(dh)
            dh = sb(dsum) + b1(r1(b2(dsum)))
        b_stem(r_stem(dh))
        return loss


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 10, size=6)
    return x, y


def test_resnet20_loss_and_gradients_match_numpy(batch):
    x, y = batch
    model = samix.models.resnet20(num_classes=10, in_channels=3, seed=3)
    ref = NumpyResNet20(model.state_dict())
    ref_loss = ref.loss_and_backward(x.astype(np.float64), y)
    loss, grads = model.loss_and_grad(x, y)
    assert loss == pytest.approx(ref_loss, rel=1e-4)
    assert set(grads) == set(ref.grads)
    for name, g in grads.items():
        r = ref.grads[name]
        err = np.abs(g - r).max() / (np.abs(r).max() + 1e-8)
        assert err < 2e-3, f"{name}: relative error {err:.2e}"
    # BN running statistics moved by momentum 0.1 toward the batch statistics (unbiased variance).
    state = model.state_dict()
    for bn, (mu, var) in ref.stats.items():
        np.testing.assert_allclose(state[bn + ".running_mean"], 0.1 * mu, rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(state[bn + ".running_var"], 0.9 + 0.1 * var, rtol=1e-3, atol=1e-5)


def test_resnet20_sgd_step_matches_numpy(batch):
    """One engine training step (Trainer, SGD lr 0.1, momentum 0.9, wd 5e-4, no augmentation,
    no mixing) equals θ − lr·(∇L + wd·θ) computed from the NumPy gradient."""
    x, y = batch
    model = samix.models.resnet20(num_classes=10, in_channels=3, seed=3)
    before = model.state_dict()
    ref = NumpyResNet20(before)
    ref.loss_and_backward(x.astype(np.float64), y)
    opt = samix.optim.SGD(lr=0.1, momentum=0.9, weight_decay=5e-4)
    trainer = samix.Trainer(model, optimizer=opt, schedule="constant", mix="vanilla", seed=0)
    trainer.train_step(x, y)  # constant learning rate, float batch used as given
    after = model.state_dict()
    for name, g in ref.grads.items():
        expected = before[name] - 0.1 * (g + 5e-4 * before[name])
        err = np.abs(after[name] - expected).max() / (np.abs(before[name] - expected).max() + 1e-8)
        assert err < 2e-3, f"{name}: relative error of the update {err:.2e}"
