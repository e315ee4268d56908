"""Foundation: functional maths, the embedded VGG, generator, discriminator and losses."""
import dataclasses

import pytest
import torch

from stylize import losses
from stylize.encoder import TAP_CHANNELS
from stylize.functional import SPATIAL_CHUNK, gram, mean_std
from stylize.generator import Generator, StyleAttention


def test_gram_matches_hand_computation():
    feat = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [-1.0, 2.0]]]])  # (1, 2, 2, 2)
    # F = [[1, 2, 3, 4], [0, 1, -1, 2]], M = 4: F F^T / M
    expected = torch.tensor([[30.0, 7.0], [7.0, 6.0]]) / 4
    assert torch.allclose(gram(feat)[0], expected)


@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
def test_mean_std_matches_float64_statistics_and_their_gradients(memory_format):
    """Chunked float32 sums of x and x² (more positions than one chunk), in either memory order, as exact as var."""
    torch.manual_seed(0)
    feat = (torch.randn(2, 8, 300, 250).relu() * 3 + 0.5).contiguous(memory_format=memory_format).requires_grad_(True)
    assert 300 * 250 > SPATIAL_CHUNK
    mean, std = mean_std(feat)
    reference = feat.double()
    expected_mean = reference.mean(dim=(2, 3), keepdim=True)
    expected_std = (reference.var(dim=(2, 3), keepdim=True, unbiased=False) + 1e-5).sqrt()
    assert torch.allclose(mean.double(), expected_mean, rtol=1e-6) and torch.allclose(std.double(), expected_std, rtol=1e-6)
    (grad,) = torch.autograd.grad((mean * 2 + std).sum(), feat)
    (expected_grad,) = torch.autograd.grad((expected_mean * 2 + expected_std).sum(), feat)
    assert torch.allclose(grad, expected_grad, rtol=1e-4, atol=1e-9)
    bf16_mean, bf16_std = mean_std(feat.detach().bfloat16())
    assert bf16_mean.dtype == torch.bfloat16 and torch.allclose(bf16_std.double(), expected_std, rtol=1e-2)


def test_style_attention_is_softmax_attention_with_keys_narrower_than_values():
    """The fused kernel's padded call gives softmax(q k^T / sqrt(key_dim)) v, query chunks and all."""
    torch.manual_seed(0)
    attention = StyleAttention(channels=16, key_dim=8, value_dim=24)
    torch.nn.init.normal_(attention.out.weight)
    content, style = torch.randn(2, 16, 70, 64), torch.randn(2, 16, 9, 7)  # 4480 queries: two chunks
    q = attention.query(content).flatten(2).transpose(1, 2)
    k = attention.key((style - style.mean((2, 3), keepdim=True)) / (style.var((2, 3), keepdim=True, unbiased=False) + 1e-5).sqrt()).flatten(2).transpose(1, 2)
    v = attention.value(style).flatten(2).transpose(1, 2)
    expected = attention.out((torch.softmax(q @ k.transpose(1, 2) / 8**0.5, dim=-1) @ v).transpose(1, 2).reshape(2, 24, 70, 64))
    assert torch.allclose(attention(content, style), expected, atol=1e-5)


def test_total_variation_known_values():
    assert losses.tv_loss(torch.full((2, 3, 8, 8), 0.3)).abs().max() == 0
    yy, xx = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    checker = ((yy + xx) % 2).float().expand(1, 3, 8, 8)
    # every horizontal and vertical neighbour differs by exactly 1: mean |dx| + mean |dy| = 2
    assert torch.allclose(losses.tv_loss(checker), torch.tensor([2.0]))


def test_vgg_weights_are_imagenet(encoder):
    bias = encoder.convs["conv1_1"].bias[:4]
    assert torch.allclose(bias, torch.tensor([0.7343, 0.0934, 0.0678, 0.8863]), atol=1e-3)
    ramp = torch.linspace(0, 1, 3 * 32 * 32).reshape(1, 3, 32, 32)
    with torch.no_grad():
        feats = encoder(ramp)
    checksums = [round(f.double().sum().item(), 0) for f in feats]
    # taps are normalised to a mean near 1 on photos: on this ramp every tap is O(1)
    assert all(0.05 < f.mean().item() < 5 for f in feats), [f.mean().item() for f in feats]
    assert [f.shape[1] for f in feats] == list(TAP_CHANNELS)
    # measured once from weights/vgg16_imagenet.safetensors as converted by scripts/convert_vgg16.py
    assert checksums == pytest.approx([143504.0, 40083.0, 24325.0, 13373.0], rel=2e-3), checksums


def test_a_single_picture_decodes_as_it_does_in_a_batch(tiny_generator):
    """One picture folds AdaIN and strength into the skip convs' weights; a batch (training) builds the fused maps.
    Both must paint the same, at every strength."""
    torch.manual_seed(0)
    for block in tiny_generator.merge_skip.values():
        torch.nn.init.normal_(block.weight)
    content, style = torch.rand(2, 3, 64, 72), torch.rand(2, 3, 64, 64)
    lambdas, strengths = torch.tensor([[1.0, 10.0, 0.1, 0.1, 0.1], [0.3, 1.0, 1.0, 0.01, 1.0]]), torch.tensor([1.0, 0.4])
    assert len(tiny_generator.merge_skip) == 3
    with torch.no_grad():
        batch = tiny_generator(content, style, lambdas, strengths)
        single = torch.cat([tiny_generator(content[i:i + 1], style[i:i + 1], lambdas[i:i + 1], strengths[i].item())
                            for i in range(2)])
    assert torch.allclose(batch, single, atol=1e-5)


def test_vgg_taps_are_the_raw_activations_divided_by_their_scale(encoder):
    """The scales are folded into the convs' weights (no full-size division): the taps must still be raw / scale."""
    image = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        taps, raw = encoder(image), encoder.raw_features(image)
    assert len(raw) == len(taps) == len(encoder.tap_scale) and not torch.all(encoder.tap_scale == 1)
    for tap, activation, scale in zip(taps, raw, encoder.tap_scale):
        assert torch.allclose(tap, activation / scale, rtol=1e-4, atol=1e-5)


def test_vgg_is_frozen(encoder):
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.training


@pytest.mark.parametrize("size", [(203, 317), (64, 65), (131, 97)])
def test_generator_output_size_matches_input(tiny_generator, size):
    content, style = torch.rand(1, 3, *size), torch.rand(1, 3, 120, 90)
    out = tiny_generator(content, style, torch.ones(1, 5))
    assert out.shape == (1, 3, *size)
    assert out.min() >= 0 and out.max() <= 1


def test_different_lambdas_give_different_outputs(tiny_generator):
    content, style = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a = tiny_generator(content, style, torch.tensor([[1.0, 1.0, 0.1, 0.1, 1.0]]))
        b = tiny_generator(content, style, torch.tensor([[10.0, 0.1, 1.0, 1.0, 0.1]]))
    assert (a - b).abs().max() > 1e-5


def test_strength_blends_features(tiny_generator):
    content, style = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    c_enc, s_enc = tiny_generator.encode_content(content), tiny_generator.encode_style(style)
    with torch.no_grad():
        tiny_generator.attention.out.weight.normal_()  # a live attention branch must blend too
        zero, half, full = ([tiny_generator.fuse_level(c_enc, s_enc, tap, torch.full((1, 1, 1, 1), a)) for tap in range(4)]
                            for a in (0.0, 0.5, 1.0))
    for feat, z, h, f, (s_mean, s_std) in zip(c_enc.feats, zero, half, full, s_enc.stats):
        assert torch.allclose(z, feat, atol=1e-5)  # strength 0: the content's own features
        assert torch.allclose(h, (feat + f) / 2, atol=1e-4)
    for tap in range(3):  # strength 1, no attention below relu4_1: AdaIN (Huang & Belongie), written out
        (c_mean, c_std), (s_mean, s_std) = c_enc.stats[tap], s_enc.stats[tap]
        assert torch.allclose(full[tap], (c_enc.feats[tap] - c_mean) / c_std * s_std + s_mean, atol=1e-4)


def test_gradients_reach_every_trainable_parameter_and_not_vgg(tiny_generator):
    content, style = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    lambdas = torch.tensor([[1.0, 2.0, 0.1, 0.1, 1.0], [0.5, 5.0, 0.2, 0.3, 2.0]])
    with torch.no_grad():
        tiny_generator.attention.out.weight.normal_(std=0.1)  # zero-init would block q/k/v gradients
    out = tiny_generator(content, style, lambdas)
    out.mean().backward()
    for name, p in tiny_generator.named_parameters():
        if name.startswith("encoder."):
            assert p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_discriminator_returns_patch_logits_per_scale(tiny_discriminator):
    logits = tiny_discriminator(torch.rand(3, 3, 64, 64))
    assert [tuple(l.shape) for l in logits] == [(3, 1, 16, 16), (3, 1, 8, 8)]


def test_style_conditional_discriminator_starts_as_its_trunk_and_then_reads_the_code(tiny_discriminator):
    image, codes = torch.rand(2, 3, 64, 64), torch.rand(2, 10)
    conditional = tiny_discriminator.with_style_condition(10)
    assert conditional.config["style_dim"] == 10
    for plain, projected in zip(tiny_discriminator(image), conditional(image, codes)):
        assert torch.allclose(plain, projected)  # zero-initialised projections: the same critic
    with pytest.raises(ValueError, match="style-conditional"):
        conditional(image)
    torch.nn.init.normal_(conditional.projections[0].weight)
    same_image = image[:1].expand(2, -1, -1, -1)
    logits = conditional(same_image, codes)[0]
    assert not torch.allclose(logits[0], logits[1])  # one image, two styles: two scores
    assert all(torch.allclose(l[0], l[1]) for l in conditional(same_image, codes[:1].expand(2, -1)))


def test_losses_zero_for_identical_inputs_positive_otherwise(encoder):
    torch.manual_seed(0)
    a, b = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        fa, fb = encoder(a), encoder(b)
    assert torch.allclose(losses.content_loss(fa, fa), torch.zeros(2))
    assert torch.allclose(losses.style_loss(fa, losses.style_grams(fa)), torch.zeros(2))
    assert (losses.content_loss(fa, fb) > 0).all()
    assert (losses.style_loss(fa, losses.style_grams(fb)) > 0).all()
    assert losses.content_loss(fa, fb).shape == (2,)
    assert torch.allclose(losses.cycle_loss(a, a), torch.zeros(2)) and (losses.cycle_loss(a, b) > 0).all()


def test_hinge_losses_per_example():
    real = [torch.full((2, 1, 4, 4), 2.0)]
    fake = [torch.tensor([-2.0, 0.0]).view(2, 1, 1, 1).expand(2, 1, 4, 4)]
    d_loss = losses.discriminator_hinge_loss(real, fake)
    assert torch.allclose(d_loss, torch.tensor(0.5))  # real: margin met (0); fake: mean of 0 and 1
    assert torch.allclose(losses.discriminator_hinge_loss(real[:1], [f[:1] for f in fake]), torch.tensor(0.0))
    assert torch.allclose(losses.generator_adversarial_loss(fake), torch.tensor([2.0, 0.0]))
    # weighting an example out equals leaving it out; all weighted out leaves the real term alone
    kept = losses.discriminator_hinge_loss(real, fake, fake_weight=torch.tensor([0.0, 1.0]))
    assert torch.allclose(kept, losses.discriminator_hinge_loss(real, [f[1:] for f in fake]))
    assert torch.allclose(losses.discriminator_hinge_loss(real, fake, fake_weight=torch.zeros(2)), torch.tensor(0.0))
    # fakes of two D calls (e.g. two image sizes) form one batch
    small_fake = [torch.full((1, 1, 2, 2), 1.0)]
    grouped = losses.discriminator_hinge_loss(real, fake, small_fake, fake_weight=torch.tensor([1.0, 0.0, 1.0]))
    assert torch.allclose(grouped, torch.tensor(1.0))  # mean of 0 and 2


def test_decoder_without_shallow_skips_never_reads_them(encoder):
    torch.manual_seed(0)
    G = Generator(encoder, widths=(32, 16, 16, 8), blocks=(1, 1, 1), attention_key_dim=16, attention_value_dim=16,
                  film_hidden=16, skip_taps=("relu3_1",))
    assert set(G.merge_skip) == {"0"} and G.config["skip_taps"] == ["relu3_1"]
    content, style = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    c_enc, s_enc = G.encode_content(content), G.encode_style(style)
    lambdas = torch.ones(1, 5)
    out = G.decode(c_enc, s_enc, lambdas)
    shallow_noise = c_enc.feats._replace(relu1_1=torch.rand_like(c_enc.feats.relu1_1), relu2_1=torch.rand_like(c_enc.feats.relu2_1))
    assert torch.equal(out, G.decode(dataclasses.replace(c_enc, feats=shallow_noise), s_enc, lambdas))
    deeper_noise = c_enc.feats._replace(relu3_1=torch.rand_like(c_enc.feats.relu3_1))
    assert not torch.equal(out, G.decode(dataclasses.replace(c_enc, feats=deeper_noise), s_enc, lambdas))
    with pytest.raises(AssertionError, match="skip_taps"):
        Generator(encoder, skip_taps=("relu4_1",))


def test_weighted_objective_uses_each_examples_lambdas():
    terms = {"content": torch.tensor([1.0, 1.0]), "style": torch.tensor([2.0, 2.0])}
    lambdas = torch.tensor([[1.0, 0.0, 0, 0, 0], [0.0, 1.0, 0, 0, 0]]) + 1e-9
    out = losses.weighted_objective(terms, lambdas, {"content": 1.0, "style": 4.0})
    assert torch.allclose(out, torch.tensor([1.0, 0.5]), atol=1e-6)


def test_lambda_spec_is_the_one_contract_of_config_json():
    from stylize.lambda_spec import LAMBDA_NAMES, TRAINING_RANGES, LambdaSpec, log_normalization

    spec = LambdaSpec.for_training().with_normalizers({n: 2.0 for n in LAMBDA_NAMES})
    assert LambdaSpec.from_config(spec.to_config()) == spec
    legacy = {**spec.to_config(), "normalisers": spec.to_config()["normalizers"]}
    del legacy["normalizers"]
    assert LambdaSpec.from_config(legacy) == spec  # config.json written before the spelling was settled
    with pytest.raises(ValueError, match="must lie in its range"):
        LambdaSpec.for_training({"style": 100.0})
    values = iter([0.0, 0.5, 0.25, 0.75, 0.999])
    drawn = spec.sample(lambda: next(values))  # log-uniform: u = 0.5 is the geometric mean of the range's ends
    assert drawn[0] == pytest.approx(TRAINING_RANGES["content"][0]) and drawn[1] == pytest.approx(3.0)
    assert all(lo <= v <= hi for v, (lo, hi) in zip(drawn, (TRAINING_RANGES[n] for n in LAMBDA_NAMES)))
    with pytest.warns(UserWarning, match="outside the trained range"):
        assert spec.resolve({"tv": 5.0})[2] == TRAINING_RANGES["tv"][1]
    center, halfwidth = log_normalization(TRAINING_RANGES)  # the generator maps each range's ends to -1 and 1
    ends = torch.tensor([[r[i] for r in (TRAINING_RANGES[n] for n in LAMBDA_NAMES)] for i in (0, 1)])
    z = (ends.log() - torch.tensor(center)) / torch.tensor(halfwidth)
    assert torch.allclose(z, torch.tensor([[-1.0] * 5, [1.0] * 5]), atol=1e-6)
