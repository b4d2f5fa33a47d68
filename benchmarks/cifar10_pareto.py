"""CIFAR-10 accuracy-MACs-latency: a trained DMNN against its static twin and static nets of equal MACs.

    python -m benchmarks.cifar10_pareto [--only ROW[,ROW...]] [--list] [--rewrite]

Every row is one `run_training` of the library in `runs/pareto/<row>` (a rerun
resumes an interrupted row and skips a finished one), then measured: top-1 on
the 10,000 test images, MACs per image, the gates' dynamics, the TFLite batch-1
latency with the learned gates over 200 test images (1 thread, interleaved
with the twin's), and the paired training-step time against the twin's. Each
finished row is stored in `benchmarks/results/cifar10_pareto.json` (committed,
so rows measured in different sessions add up) and the section of
BENCHMARKS.md is rewritten from it (`--rewrite` only rewrites the section).
A reference twin missing from `runs/` (a new checkout) is restored from the
shipped preset made from it, if there is one (`static_s0`: `resnet_cifar10`),
instead of being trained again.

Model: the small CIFAR ResNet (stack (1, 1, 1, 1), width 0.25, 7.33 M MACs),
the main job's model, trained 15 epochs on the 50,000 training images: the
longest schedule whose rows each fit well under 90 minutes on 2 cores, and
long enough for the twin to pass 75% (the issue's bar). Rows:
  * `static_s0`, `static_s1`: the twin, seeds 0 and 1.
  * `static_w018`, `static_w020`, `static_w021`: static networks of width 0.18,
    0.20 and 0.21 (0.52x, 0.62x and 0.68x the twin's MACs), the alternative a
    user has.
  * `dmnn_scratch`: today's DMNN recipe (paper split, flops_target 0.5, no
    teacher), 15 epochs.
  * `dmnn_t050_s0`, `dmnn_t070_s0`, `dmnn_t050_s1`: the new recipe: warm
    start from the twin of the same seed (`from_static`, partition split,
    2 sub-blocks per block: half of each 3x3 kept, and two `IF`s per block in
    TFLite, which measured faster per MAC than 4 on this model), distillation
    from it (weight 1, T = 4), 10 epochs at lr 0.04, the target annealed over
    the first 3 and reached with a Lagrange multiplier (dual step 0.05), per-block
    rates (`rate_loss="block"`), after the annealing the training target
    corrected each epoch by the gap between the training FLOPs ratio and the
    inference ratio on 10 clean batches (`target_correction_batches`), gate
    noise off for the last 2, then `calibrate_flops` (threshold shift on
    un-augmented training images, BatchNorm recalibrated on the augmented
    batches training used); the flops
    target set so the executed MACs are 0.5x / 0.7x the twin's. Their training
    cost includes the twin's 15 epochs.
  * `dmnn_shift_t050_s0`: dmnn_t050 whose corrections also shift the gate
    thresholds so the clean inference ratio meets the target during training
    (`correction_shifts_gates`), not only after it.
  * `dmnn_dual05_t050_s0`, `dmnn_dual05_t050_s1`: dmnn_t050 with a 10x
    faster multiplier (dual step 0.5): with 0.05 the training FLOPs ratio
    lagged its target by 0.02-0.09 for epochs, and the threshold shift that
    closes the gap after training cost the most accuracy.
  * `dmnn_bound_t050_s0`, `dmnn_bound_t050_s1`: dmnn_dual05 with the gate
    logits penalised beyond +-4 (`gate_logit_bound`): in dmnn_dual05_t050_s1
    the logits ran to +-25, where the straight-through gradient vanishes, so
    every gate froze (training execution rate exactly 0.375 for 5 epochs)
    while the multiplier grew to 63.
  * `dmnn_bound_t060_s0`, `dmnn_bound_t060_s1`, `dmnn_bound_t070_s0`,
    `dmnn_bound_t070_s1`: dmnn_bound at 0.6x and 0.7x the twin's MACs, against
    `static_w020` (0.62x) and `static_w021` (0.68x).
  * `dmnn_stage_t060_s0`: dmnn_bound_t060 with per-stage groups (1, 1, 2, 2):
    whole-block gates in the two high-resolution stages keep their full 3x3
    and save `IF`s (benchmarks/partition_layouts.py); seed 1 not run, as it
    lost 2.7 points to the uniform layout on seed 0.
  * `dmnn_gaterange_t060_s0`: dmnn_bound_t060 with `rate_loss="bounded"`:
    every sub-block's batch rate kept in [0.1, 0.9], against gates that are
    constant over the test set (half of them in the dmnn_bound rows).
  * `static_w020_e25`, `static_w021_e25`: the static nets of equal MACs trained
    25 epochs, the images a DMNN row processes with its twin's 15 epochs
    included: the comparison at the same training budget.
  * `dmnn_bounded_t050_s0`: dmnn_t050 with `rate_loss="bounded"` (every
    sub-block's batch rate kept in [0.1, 0.9]), the lever for gates that
    depend on the image.
  * A deeper family with the twin's MACs: `static_d2_s0`, `static_d2_s1`, stack
    (2, 2, 2, 2) at width 0.2 (7.26 M MACs, 0.99x static_s0): 8 blocks instead
    of 4 give the controllers more to choose between, and a block can be left
    out whole. `dmnn_d2_block_t060_s0`, `dmnn_d2_block_t060_s1`: the dmnn_bound
    recipe on it with whole-block gates (`groups=1`: every gate skips one
    residual branch; with every gate on the DMNN *is* the twin, and each `IF`
    runs a full-width block, the fastest per MAC in XNNPACK), at 0.6x its
    twin's MACs. Their ratios are taken against static_d2_s0; the latency
    also against static_s0, the reference of the statics of equal MACs.
    (2 sub-blocks per block cannot split this width: its bottlenecks have
    12, 25, 51 and 102 channels.)
  * `dmnn_lr10_t060_s0`, `dmnn_lr10_t060_s1`: dmnn_bound_t060 fine-tuned at lr
    0.1 instead of 0.04: the dmnn_bound rows' training accuracy still rose in
    their last epoch (0.68 to 0.79 over 10, the twin ended at 0.80), as they
    recover from the 3x3 blocks the split drops. `dmnn_lr10_t070_s0`: the same
    at 0.7x the twin's MACs.
  * `dmnn_allon_s0`, `dmnn_allon_s1`: the partition DMNN (2 sub-blocks per
    block) trained from scratch with every gate on (`forced_gate_rate=1.0`),
    the twin's recipe and 15 epochs: a static network whose 3x3 convolutions
    are block-diagonal (0.84x the twin's MACs). `dmnn_pre_t060_s0`,
    `dmnn_pre_t060_s1`: the dmnn_lr10_t060 fine-tune started from it and
    distilled from it instead of the twin: nothing of the network is dropped
    when its gates start to learn, and the 15 epochs before are its own.
    Charged 25 epochs like the other fine-tunes; ratios against static_s0.
  * The longer budget (the papers fine-tune from a converged twin):
    `static_e25_s0`, `static_e25_s1`, the twin trained 25 epochs, a family of
    its own; `dmnn_e25_t060_s0`, `dmnn_e25_t060_s1`, the dmnn_lr10_t060
    fine-tune from it (charged 35 epochs); `static_w020_e35`, the static net
    of equal MACs trained those 35 epochs.
  * `dmnn_unc_t060_s0`, `dmnn_unc_t060_s1`: dmnn_lr10_t060 with per-image
    FLOPs targets raised by the image's own uncertainty (`uncertainty_spread
    = 1`: target t + (u_i - mean u), u_i the normalised entropy of its
    prediction): the lever for gates that spend more on hard images, where
    every row before gave the confidently correct and the misclassified
    images the same MACs. `dmnn_unc3_t060_s0`, `dmnn_unc6_t060_s0`: spread 3
    and 6 (at 1 the misclassified images got 0.01 more of the MACs than the
    confident ones, and the spread of per-image MACs was unchanged);
    `dmnn_unc6_t060_s1`, and `dmnn_unc12_t060_s0` at spread 12 (top-1 rose
    with the spread on seed 0: 78.51, 78.60, 78.84% at 1, 3, 6).
    `dmnn_d2_unc6_t060_s0`, `dmnn_d2_unc6_t060_s1`: the deeper family's
    whole-block DMNN (`dmnn_d2_block_t060`) with spread 6: its gates do
    depend on the image, but the wrong way (per-image MACs ratio 0.63 on
    the most confident quarter of the test images, 0.57 on the least).
    `dmnn_unc6w10_t060_s0`, `dmnn_unc6w30_t060_s0`: dmnn_unc6_t060 with the
    resource-loss weight lambda 10 and 30 instead of 2 (the per-image term
    is weighted by lambda): whether the per-image spread is held back by
    the term's weight.
  * `exits_t060_s0`, `exits_t060_s1`: not a DMNN: the twin itself with early
    exits (`EarlyExitModel`, `early_exits=("conv3_block1", "conv4_block1")`:
    2x2-pooled linear heads after stages 2 and 3, at 0.48x and 0.74x of the
    twin's MACs), fine-tuned whole for 10 epochs at lr 0.1 with every exit
    and the final classifier distilled from the twin, then the confidence
    threshold set on 20 clean training batches so the MACs are 0.6x the
    twin's. Every image that does not leave early runs the whole network, so
    nothing of the twin is dropped (the DMNN rows lose their gap on the
    quarter of the images they are least sure of, `accuracy_by_uncertainty`).
    `exits_e25_t060_s0`, `exits_e25_t060_s1`: the same from the 25-epoch
    twin (charged 35 epochs), against `dmnn_e25_t060`. They are judged in a
    verdict of their own.
  * `exits_joint_t060_s0`, `exits_joint_t060_s1`: the same exits trained with
    the network from the start (SDN's joint training: the twin's recipe for
    25 epochs, every exit's loss added, no teacher), then calibrated to 0.6x:
    25 epochs, the budget of the fine-tuned rows and of static_w020_e25, with
    none of it spent on a restart.
    `exits_joint_t059_s0`, `exits_joint_t059_s1`: the same, calibrated to
    0.59x: calibrated on training images, which leave early more often than
    test images, the t060 rows ran 0.608 and 0.602x of the twin's MACs on the
    test images, over the issue's 0.6x.
  * `dmnn_joint_t060_s0`, `dmnn_joint_t060_s1`: the DMNN trained as the
    exits_joint rows are: from the start, no teacher, the twin's recipe for 25
    epochs (the fine-tunes' budget, with no restart), the partition split (2
    sub-blocks), its target annealed from 1 to 0.6x the twin's MACs over the
    first 8 epochs and then met with the multiplier and the corrections, the
    gate logits bounded at +-4, per-image targets spread by uncertainty (6),
    gate noise off for the last 5 epochs, then calibrated like the fine-tunes.
  * `dmnn_d2_joint_t060_s0`, `dmnn_d2_joint_t060_s1`: the dmnn_joint recipe on
    the deeper family's whole-block DMNN (stack (2, 2, 2, 2), width 0.2,
    `groups=1`), at 0.6x static_d2's MACs: ConvNet-AIG's setting (whole
    residual branches skipped, trained with the network from the start, as
    stochastic depth trains a network to do without some of its blocks), where
    the fine-tuned dmnn_d2_block rows lost 5 points to their twin. Its gates
    depend on the image (dmnn_d2_block: no constant gate, per-image MACs std
    0.06); its `IF`s run full-width blocks.
  * `dmnn_inplace_t060_s0`, `dmnn_inplace_t060_s1`: dmnn_joint_t060 with in-place
    distillation (`inplace_distill_weight=1`): each step also trains the all-on
    network on the labels and distils it into the gated one.
  * `dmnn_d2_inplace_t060_s0`, `dmnn_d2_inplace_t060_s1`: the same on the deeper
    family's whole-block DMNN (the dmnn_d2_joint rows plus in-place distillation).
  * `dmnn_cross_inplace_t060_s0`: dmnn_inplace_t060 with `split="cross"`: the sub-blocks partition the 1x1s as before, and the
    3x3 keeps its blocks between the sub-blocks that run together, so the
    all-on network is the twin (the partition split's all-on network, with
    the 3x3's off-diagonal blocks dropped, was 1.7 points below the 25-epoch
    twin: README, "Where the in-place DMNNs lose their points"). In TFLite each block
    is one `IF` per set of sub-blocks, each a dense bottleneck of that set's
    channels. Seed 1 not run: seed 0 lost 12 points to dmnn_inplace_t060_s0
    (at 0.6x the twin's MACs the cross DMNN runs 0.6 of its own network, the
    partition DMNN 0.71 of its cheaper one, one BatchNorm after the summed
    sub-blocks sees every set of them, and the per-block rate term, linear in
    the MACs then, asked for a rate of 0.415 where 0.474 was needed).
  * `dmnn_preserve_inplace_t060_s0`, `dmnn_preserve_inplace_t060_s1`:
    dmnn_inplace_t060 with the DMNN paper's split (`split="preserve"`): 2
    independent sub-blocks of 12, 20, 40 and 80 channels (the twin's
    bottlenecks: 16, 32, 64, 128), about the twin's parameters and 1.06x its MACs
    with every gate on. Like the cross split, its all-on network has the
    twin's capacity; unlike it, each sub-block has its own BatchNorms, so a
    sub-block's output does not depend on which others run. 79.25% and
    76.64% (mean 77.95%); all on, 82.30% and 81.18% (level with the twin
    trained as long): its gates, running 0.57 of the network, cost 2.9 and
    4.7 points. Seed 0 trained beside seed 1 for 12 of its 25 epochs (its
    wall time is inflated); seed 1 was stopped and resumed from its backup.
  * `dmnn_difficulty_joint_t060_s0`, `dmnn_difficulty_joint_t060_s1`: dmnn_joint_t060 with a difficulty signal
    for the gates (`difficulty_head="conv3_block1"`): an exit head after
    stage 2, trained on the labels, whose softmax uncertainty the controllers
    of stages 3 and 4 read and which sets the per-image FLOPs targets. The
    splits together said the gates lose because they hardly depend on the
    image; the exits, which do, read exactly this signal. 79.73% and 79.55%
    (mean 79.64%, +0.80 over dmnn_joint_t060), per-image MACs spread 0.047
    (0.042-0.043 without the head), 3 of 8 gates constant.
    `dmnn_difficulty_inplace_t060_s0`, `dmnn_difficulty_inplace_t060_s1`: the same with
    in-place distillation (dmnn_inplace_t060 plus the head): the two best DMNN levers
    together. 80.98% and 80.47% (mean 80.73%: +1.03 over dmnn_inplace_t060, +0.21 over
    static_w020_e25, -1.17 against the twin trained as long), 4 of 8 gates constant, MACs
    spread 0.042-0.045. Seed 0 trained twice (its first model, 80.78%, was lost with a
    checkout; the second, on a Xeon, is the shipped preset dmnn_resnet_cifar10); seed 1
    trained while the test suite ran beside it (its wall time is inflated).
    `dmnn_early_difficulty_inplace_t060_s0`: the same with the head one stage earlier
    (`difficulty_head="conv2_block1"`), so the controllers of 3 of the 4 gated blocks read it.
    79.48% (seed 0; -1.30 against the head at conv3_block1, seed 0 as first trained) at 0.60x, MACs spread
    0.034, 4 of 8 gates constant, latency 0.84x static_s0 (this row alone measured on the
    slower AMD machine): one seed, below both seeds of the head at conv3_block1, so the
    head stays there. Trained in two parts (resumed from its backup).
  * `dmnn_info_difficulty_inplace_t060_s0`: dmnn_difficulty_inplace_t060 with the gates'
    decisions rewarded for depending on the image (`gate_information_weight=0.5`: each
    gate layer adds minus 0.5 times the mutual information between the batch's images and
    its gates' decisions, `GumbelGate(information_weight=...)`): the lever left for the
    gates that stay constant over the test set (4 of 8) and the per-image MACs spread
    (0.042-0.045, the issue asks 0.08). 79.76% (seed 0; -1.22 against the same recipe
    without it, seed 0), at 0.598x: no gate constant any more (0 of 8), but the
    per-image MACs spread unchanged (0.042) and fewer distinct costs (6): the sub-blocks
    of a block take turns per image at a constant cost (routing, not spending); latency
    0.99x, with no constant gate left to fix. Seed 1 not run. Its process was stopped
    (SIGSTOP) for 21 min while the test suite ran: 140 min of wall time is ~119 trained.
  * `dmnn_switch_difficulty_inplace_t060_s0`: dmnn_difficulty_inplace_t060 with the cross
    split and switchable BatchNorms 2 and 3 (`switchable_norms=True`: one per set of running
    sub-blocks, `layers.SwitchableBatchNorm`): the cross split's all-on network is the twin,
    and its one BatchNorm per layer was one measured reason it lost 12 points.
    `dmnn_cross_difficulty_inplace_t060_s0`: the same with one BatchNorm per layer, the
    comparison (trained at commit 5a062b7, the code before switchable norms, with this row
    added).
  Rows kept from earlier variants (in the results file, not rerun) are listed
  under the table with what differed.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RUNS = "runs/pareto"
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cifar10_pareto.json")
SECTION = "CIFAR-10 DMNN vs static twin (cifar10_pareto)"
BASE = dict(max_train_examples=50000, epochs=15, figures=False, verbose=2)
FINE_TUNE = dict(
    model="dmnn_resnet", groups=2, block_split="partition", epochs=10, learning_rate=0.04,
    warmup_epochs=0.0, target_schedule_epochs=3.0, noise_off_epochs=2,
    distill_weight=1.0, distill_temperature=4.0, dual_step=0.05, rate_loss="block",
    calibrate_flops_batches=20, target_correction_batches=10,
)
LATENCY_IMAGES = 200
# compare_latency's order since 579bea9: every image on every model in turn, the first
# model rotating. Rows without it were measured model by model over all images, the twin first.
ROTATED = "image by image, rotating"
# Whole-block gates in the two 32x32/16x16 stages, 2 sub-blocks in the last two: fewer IFs
# and the full 3x3 kept where feature maps are large (benchmarks/partition_layouts.py).
STAGE_GROUPS = (1, 1, 2, 2)
# The deeper model of the twin's MACs: 8 blocks (stack (2, 2, 2, 2)) at width 0.2, 7.26 M MACs.
DEEP = dict(stack_sizes=(2, 2, 2, 2), width_multiplier=0.2)
# The dmnn_bound fine-tune: dual step 0.5, gate logits bounded at +-4.
BOUND = {**FINE_TUNE, "dual_step": 0.5, "gate_logit_bound": 4.0}
# The best fine-tune (dmnn_lr10_t060): dmnn_bound at lr 0.1.
LR10 = {**BOUND, "learning_rate": 0.1}
# The partition DMNN pre-trained with every gate on (the twin's recipe otherwise): the start
# of the dmnn_pre rows, in place of the twin.
ALL_ON = dict(model="dmnn_resnet", groups=2, block_split="partition", flops_target=1.0,
              forced_gate_rate=1.0)
# The dmnn_bound fine-tune with whole-block gates (groups=1): the deeper family's DMNN.
D2_BLOCK = {**BOUND, "groups": 1}


# Early exits on the twin (an EarlyExitModel: 2x2-pooled linear heads after stages 2 and 3 of
# the four), fine-tuned whole with every exit distilled from the twin, as the dmnn_lr10 rows
# (10 epochs at lr 0.1); the confidence threshold then set on 20 clean training batches.
EXITS = dict(config="cpu_static", model="resnet", early_exits=("conv3_block1", "conv4_block1"),
             epochs=10, learning_rate=0.1, warmup_epochs=0.0, distill_weight=1.0,
             distill_temperature=4.0, calibrate_flops_batches=20)


# The DMNN trained with its gates from the start, no teacher and no restart: the partition
# DMNN (2 sub-blocks) on the twin's recipe for 25 epochs, the target annealed from 1 over the
# first third, gate noise off for the last fifth; the dmnn_unc6 gate levers otherwise.
JOINT = dict(config="cpu_scratch", epochs=25, twin_share=0.6, groups=2, block_split="partition",
             dual_step=0.5, gate_logit_bound=4.0, rate_loss="block", uncertainty_spread=6.0,
             target_schedule_epochs=8.0, noise_off_epochs=5, target_correction_batches=10,
             calibrate_flops_batches=20)
# The difficulty signal: a classifier head after stage 2 (the first exit's place), trained on
# the labels; the controllers of stages 3 and 4 read its uncertainty, which also sets the
# per-image FLOPs targets (`GatingConfig.difficulty_head`).
DIFFICULTY_HEAD = "conv3_block1"
# JOINT with in-place distillation (the sandwich rule, `inplace_distill_weight`): each step
# also trains the all-on network on the labels and distils it into the gated one.
INPLACE = dict(JOINT, inplace_distill_weight=1.0)


def fine_tune(seed, share, recipe, twin="static", **changes):
    """A dynamic row: `recipe` with `changes`, fine-tuned from `<twin>_s<seed>`.

    It aims at `share` x the twin's MACs, and is charged the twin's epochs.
    """
    return {"config": "cpu_scratch", "seed": seed, "twin": f"{twin}_s{seed}",
            "twin_share": share, **recipe, **changes}


# Executed MACs of the partition DMNN are a share of its own full MACs; these rows aim at a
# share of the twin's: flops_target = share * twin MACs / DMNN full MACs (computed at run time).
ROWS = {
    "static_s0": dict(config="cpu_static", seed=0),
    "dmnn_t050_s0": fine_tune(0, 0.5, FINE_TUNE),
    "static_w018": dict(config="cpu_static", seed=0, width_multiplier=0.18),
    "dmnn_t070_s0": fine_tune(0, 0.7, FINE_TUNE),
    "static_s1": dict(config="cpu_static", seed=1),
    "dmnn_t050_s1": fine_tune(1, 0.5, FINE_TUNE),
    "dmnn_bounded_t050_s0": fine_tune(0, 0.5, FINE_TUNE, rate_loss="bounded"),
    "dmnn_shift_t050_s0": fine_tune(0, 0.5, FINE_TUNE, correction_shifts_gates=True),
    "dmnn_dual05_t050_s0": fine_tune(0, 0.5, FINE_TUNE, dual_step=0.5),
    "dmnn_dual05_t050_s1": fine_tune(1, 0.5, FINE_TUNE, dual_step=0.5),
    "dmnn_bound_t050_s0": fine_tune(0, 0.5, BOUND),
    "dmnn_bound_t050_s1": fine_tune(1, 0.5, BOUND),
    "dmnn_bound_t070_s0": fine_tune(0, 0.7, BOUND),
    "static_w021": dict(config="cpu_static", seed=0, width_multiplier=0.21),
    "dmnn_bound_t070_s1": fine_tune(1, 0.7, BOUND),
    "dmnn_bound_t060_s0": fine_tune(0, 0.6, BOUND),
    "dmnn_bound_t060_s1": fine_tune(1, 0.6, BOUND),
    "static_w020": dict(config="cpu_static", seed=0, width_multiplier=0.20),
    "dmnn_gaterange_t060_s0": fine_tune(0, 0.6, BOUND, rate_loss="bounded"),
    "static_w020_e25": dict(config="cpu_static", seed=0, width_multiplier=0.20, epochs=25),
    "static_w021_e25": dict(config="cpu_static", seed=0, width_multiplier=0.21, epochs=25),
    "static_w020_e25_s1": dict(config="cpu_static", seed=1, width_multiplier=0.20, epochs=25),
    "dmnn_stage_t060_s0": fine_tune(0, 0.6, BOUND, groups=STAGE_GROUPS),
    "dmnn_scratch": dict(config="cpu_scratch", seed=0, flops_target=0.5),
    "static_d2_s0": dict(config="cpu_static", seed=0, **DEEP),
    "static_d2_s1": dict(config="cpu_static", seed=1, **DEEP),
    "dmnn_d2_block_t060_s0": fine_tune(0, 0.6, D2_BLOCK, twin="static_d2"),
    "dmnn_d2_block_t060_s1": fine_tune(1, 0.6, D2_BLOCK, twin="static_d2"),
    "dmnn_lr10_t060_s0": fine_tune(0, 0.6, LR10),
    "dmnn_lr10_t060_s1": fine_tune(1, 0.6, LR10),
    "dmnn_lr10_t070_s0": fine_tune(0, 0.7, LR10),
    "dmnn_allon_s0": dict(config="cpu_scratch", seed=0, **ALL_ON),
    "dmnn_allon_s1": dict(config="cpu_scratch", seed=1, **ALL_ON),
    "dmnn_pre_t060_s0": fine_tune(0, 0.6, LR10, twin="dmnn_allon"),
    "dmnn_pre_t060_s1": fine_tune(1, 0.6, LR10, twin="dmnn_allon"),
    "static_e25_s0": dict(config="cpu_static", seed=0, epochs=25),
    "static_w020_e35": dict(config="cpu_static", seed=0, width_multiplier=0.20, epochs=35),
    "dmnn_e25_t060_s0": fine_tune(0, 0.6, LR10, twin="static_e25"),
    "static_e25_s1": dict(config="cpu_static", seed=1, epochs=25),
    "dmnn_e25_t060_s1": fine_tune(1, 0.6, LR10, twin="static_e25"),
    "dmnn_unc_t060_s0": fine_tune(0, 0.6, LR10, uncertainty_spread=1.0),
    "dmnn_unc_t060_s1": fine_tune(1, 0.6, LR10, uncertainty_spread=1.0),
    "dmnn_unc3_t060_s0": fine_tune(0, 0.6, LR10, uncertainty_spread=3.0),
    "dmnn_unc6_t060_s0": fine_tune(0, 0.6, LR10, uncertainty_spread=6.0),
    "dmnn_unc6_t060_s1": fine_tune(1, 0.6, LR10, uncertainty_spread=6.0),
    "dmnn_unc12_t060_s0": fine_tune(0, 0.6, LR10, uncertainty_spread=12.0),
    "dmnn_unc6w10_t060_s0": fine_tune(0, 0.6, LR10, uncertainty_spread=6.0,
                                      resource_loss_weight=10.0),
    "dmnn_unc6w30_t060_s0": fine_tune(0, 0.6, LR10, uncertainty_spread=6.0,
                                      resource_loss_weight=30.0),
    "dmnn_d2_unc6_t060_s0": fine_tune(0, 0.6, D2_BLOCK, twin="static_d2", uncertainty_spread=6.0),
    "dmnn_d2_unc6_t060_s1": fine_tune(1, 0.6, D2_BLOCK, twin="static_d2", uncertainty_spread=6.0),
    "exits_t060_s0": fine_tune(0, 0.6, EXITS),
    "exits_t060_s1": fine_tune(1, 0.6, EXITS),
    "exits_e25_t060_s0": fine_tune(0, 0.6, EXITS, twin="static_e25"),
    "exits_e25_t060_s1": fine_tune(1, 0.6, EXITS, twin="static_e25"),
    "exits_joint_t060_s0": dict(config="cpu_static", seed=0, epochs=25, twin_share=0.6,
                                early_exits=EXITS["early_exits"], calibrate_flops_batches=20),
    "exits_joint_t060_s1": dict(config="cpu_static", seed=1, epochs=25, twin_share=0.6,
                                early_exits=EXITS["early_exits"], calibrate_flops_batches=20),
    "exits_joint_t059_s0": dict(config="cpu_static", seed=0, epochs=25, twin_share=0.59,
                                early_exits=EXITS["early_exits"], calibrate_flops_batches=20),
    "exits_joint_t059_s1": dict(config="cpu_static", seed=1, epochs=25, twin_share=0.59,
                                early_exits=EXITS["early_exits"], calibrate_flops_batches=20),
    "dmnn_joint_t060_s0": dict(seed=0, **JOINT),
    "dmnn_joint_t060_s1": dict(seed=1, **JOINT),
    "dmnn_d2_joint_t060_s0": dict(JOINT, seed=0, groups=1, **DEEP),
    "dmnn_d2_joint_t060_s1": dict(JOINT, seed=1, groups=1, **DEEP),
    "dmnn_inplace_t060_s0": dict(INPLACE, seed=0),
    "dmnn_inplace_t060_s1": dict(INPLACE, seed=1),
    "dmnn_d2_inplace_t060_s0": dict(INPLACE, seed=0, groups=1, **DEEP),
    "dmnn_d2_inplace_t060_s1": dict(INPLACE, seed=1, groups=1, **DEEP),
    "dmnn_cross_inplace_t060_s0": dict(INPLACE, seed=0, block_split="cross"),
    "dmnn_preserve_inplace_t060_s0": dict(INPLACE, seed=0, block_split="preserve"),
    "dmnn_preserve_inplace_t060_s1": dict(INPLACE, seed=1, block_split="preserve"),
    "dmnn_difficulty_joint_t060_s0": dict(JOINT, seed=0, difficulty_head=DIFFICULTY_HEAD),
    "dmnn_difficulty_joint_t060_s1": dict(JOINT, seed=1, difficulty_head=DIFFICULTY_HEAD),
    "dmnn_difficulty_inplace_t060_s0": dict(INPLACE, seed=0, difficulty_head=DIFFICULTY_HEAD),
    "dmnn_difficulty_inplace_t060_s1": dict(INPLACE, seed=1, difficulty_head=DIFFICULTY_HEAD),
    "dmnn_early_difficulty_inplace_t060_s0": dict(INPLACE, seed=0, difficulty_head="conv2_block1"),
    "dmnn_info_difficulty_inplace_t060_s0": dict(INPLACE, seed=0, difficulty_head=DIFFICULTY_HEAD,
                                                 gate_information_weight=0.5),
    "dmnn_switch_difficulty_inplace_t060_s0": dict(INPLACE, seed=0, block_split="cross",
                                                   switchable_norms=True,
                                                   difficulty_head=DIFFICULTY_HEAD),
    "dmnn_cross_difficulty_inplace_t060_s0": dict(INPLACE, seed=0, block_split="cross",
                                                  difficulty_head=DIFFICULTY_HEAD),
}
# The families: the twins (two seeds) whose MACs, latency and training step their rows are
# measured against and whose DMNNs get one verdict each. A DMNN belongs to its twin's family;
# another static network to the family of its stack sizes (None: the default model's).
MAIN_TWINS = ("static_s0", "static_s1")
DEEP_TWINS = ("static_d2_s0", "static_d2_s1")
LONG_TWINS = ("static_e25_s0", "static_e25_s1")  # the default model trained 25 epochs
FAMILY_TWINS = (MAIN_TWINS, DEEP_TWINS, LONG_TWINS)
STACK_FAMILIES = {None: MAIN_TWINS, DEEP["stack_sizes"]: DEEP_TWINS}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(ROWS),
                        help="comma-separated rows to run (default: all, in order)")
    parser.add_argument("--list", action="store_true", help="print the rows and exit")
    parser.add_argument("--rewrite", action="store_true",
                        help="rewrite the BENCHMARKS.md section from the stored results and exit")
    args = parser.parse_args(argv)
    args.only = [r for r in args.only.split(",") if r]
    unknown = [r for r in args.only if r not in ROWS]
    if unknown:
        parser.error(f"--only: unknown rows {unknown}; allowed: {list(ROWS)}")
    return args


def model_path(row):
    return os.path.join(RUNS, row, "model.keras")


def restore_from_preset(row):
    """Writes `row`'s model.keras from the shipped preset made from it, if any; returns the preset's name or None.

    A preset keeps its row's architecture and weights (`benchmarks.make_presets`
    checks the same logits and gates), so a reference twin lost with `runs/`
    (e.g. `static_s0`, preset `resnet_cifar10`) is measured against without
    being trained again. Only the model is written, not the run's report: a
    row that is charged for the twin's training (a fine-tune) still needs it
    trained here.
    """
    import dmnn_keras as dk

    for name in dk.presets.list_presets():
        if (dk.presets.load_metadata(name).get("training") or {}).get("row") == row:
            model = dk.from_preset(name)
            os.makedirs(os.path.join(RUNS, row), exist_ok=True)
            model.save(model_path(row))
            return name
    return None


def twin_flops(twin_row):
    """MACs per image of static row `twin_row`, from its architecture in ROWS (as its report)."""
    import dmnn_keras as dk

    return dk.profile(dk.ResNet(**twin_architecture(twin_row)))["flops"]


def twin_architecture(twin_row):
    """The ResNet arguments of static row `twin_row` (the deeper family's stack and width, or none)."""
    return {k: v for k, v in ROWS[twin_row].items() if k in DEEP}


def reference_flops(row):
    """MACs per image of `row`'s reference twin (needs neither its run nor its model)."""
    return twin_flops(reference(row))


def twins_of(row):
    """The two seeds of the static twin `row` is measured against (its family's, FAMILY_TWINS)."""
    spec = ROWS.get(row, {})
    if spec.get("twin"):
        return twins_of(spec["twin"])
    return next((twins for twins in FAMILY_TWINS if row in twins),
                STACK_FAMILIES[spec.get("stack_sizes")])


def reference(row):
    """The twin `row`'s MACs, latency and step-time ratios are taken against (its family's seed 0)."""
    return twins_of(row)[0]


def train_row(row):
    """Trains (or resumes, or finds) one row; returns its report."""
    from dmnn_keras.training import run_training

    spec = dict(ROWS[row])
    preset = spec.pop("config")
    twin, share = spec.pop("twin", None), spec.pop("twin_share", None)
    output_dir = os.path.join(RUNS, row)
    report_path = os.path.join(output_dir, "report.json")
    if os.path.exists(report_path) and os.path.exists(model_path(row)):
        with open(report_path) as f:
            return json.load(f)
    if twin:
        if not all(os.path.exists(path) for path in (model_path(twin), os.path.join(
                RUNS, twin, "report.json"))):  # its weights, and its cost charged to the row
            raise SystemExit(f"row {row} needs its twin trained here: run --only {twin} first")
        spec.update(init_from=model_path(twin), teacher=model_path(twin))
    if share is not None:  # of the twin's MACs (trained from the start: its family's seed 0's)
        of = twin or reference(row)
        target = exits_flops_target(share, spec["early_exits"], of) if spec.get(
            "early_exits") else flops_target_for(share, spec["groups"], of,
                                                 spec.get("block_split", "partition"),
                                                 spec.get("difficulty_head"))
        spec.update(flops_target=round(target, 4))
    return run_training(preset, output_dir=output_dir, **{**BASE, **spec})


def flops_target_for(share, groups, twin_row="static_s0", split="partition", difficulty_head=None):
    """The flops_target of the DMNN with `groups`, `split` (and `difficulty_head`) whose executed MACs
    are `share` of the twin's."""
    import dmnn_keras as dk

    full = dk.profile(dk.DMNNResNet(groups=groups, split=split, difficulty_head=difficulty_head,
                                    **twin_architecture(twin_row)))["flops"]
    target = share * twin_flops(twin_row) / full
    if not 0 < target <= 1:
        raise ValueError(f"share {share} of the twin is out of the DMNN's reach (target {target})")
    return target


def exits_flops_target(share, exits, twin_row="static_s0"):
    """The flops_target of the twin with `exits` whose executed MACs are `share` of the twin's."""
    import dmnn_keras as dk

    twin = dk.ResNet(**twin_architecture(twin_row))
    full = dk.profile(dk.EarlyExitModel(twin, exits=exits))["flops"]
    return share * dk.profile(twin)["flops"] / full


def latency_ratios(row, images, rounds=5):
    """TFLite batch-1 latency of the row, 1 thread, learned gates, relative to its twin and to static_s0.

    The row, its reference twin and static_s0 run interleaved in one measurement.
    Returns {"twin": (ratio of the medians, ratio of the means), "static_s0": (...)}
    of the per-image latencies.
    """
    import keras

    import dmnn_keras as dk  # noqa: F401  (registers the layers)
    from dmnn_keras.export.latency import compare_latency

    names = list(dict.fromkeys(("static_s0", reference(row), row)))
    times = dict(zip(names, compare_latency(
        [keras.models.load_model(model_path(name)) for name in names], images,
        threads=1, rounds=rounds)))

    def ratios(to):
        return (times[row]["median_ms"] / times[to]["median_ms"],
                times[row]["mean_ms"] / times[to]["mean_ms"])
    return {"twin": ratios(reference(row)), "static_s0": ratios("static_s0")}


def step_time_ratio(row, rounds=6, steps=8, batch_size=128):
    """Training-step time of the row's model (with its teacher, if any) over the twin's, paired."""
    import keras

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, batch_size).astype("int32")
    models = []
    for name in (reference(row), row):
        model = keras.models.load_model(model_path(name), compile=False)
        twin = ROWS[name].get("twin")
        if twin:
            model.distill_from(keras.models.load_model(model_path(twin), compile=False))
        elif ROWS[name].get("inplace_distill_weight"):
            model.distill_in_place(ROWS[name]["inplace_distill_weight"])
        model.compile(optimizer=keras.optimizers.SGD(0.001, momentum=0.9),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        for _ in range(2):
            model.train_on_batch(x, y)
        models.append(model)
    times = [[], []]
    for _ in range(rounds):
        for model, t in zip(models, times):
            start = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(x, y)
            t.append((time.perf_counter() - start) / steps)
    return float(np.median(times[1]) / np.median(times[0]))


def test_images(count):
    from dmnn_keras.data import load_dataset

    data = load_dataset("cifar10", "test", batch_size=count, training=False, max_examples=count)
    return next(data.as_numpy_iterator())[0]


def measure_row(row, report):
    """The row's entry of the results file."""
    dynamics = report.get("gate_dynamics") or {}
    twin_macs = reference_flops(row)
    executed = report["executed_flops_mean"]
    twin_row = ROWS[row].get("twin")
    twin_report = None
    if twin_row:
        with open(os.path.join(RUNS, twin_row, "report.json")) as f:
            twin_report = json.load(f)
    if row == "static_s0":  # the reference itself
        latency = {"twin": (1.0, 1.0), "static_s0": (1.0, 1.0)}
        step_ratio = 1.0
    else:
        latency = latency_ratios(row, test_images(LATENCY_IMAGES))
        step_ratio = step_time_ratio(row) if row != reference(row) else 1.0
    spread = dynamics.get("flops_ratio_std", 0.0) * report["flops"] / twin_macs
    from benchmarks.report import measured_where

    return {
        "row": row,
        "reference": reference(row),
        **measured_where(),
        "seed": ROWS[row].get("seed", 0),
        "top1": report["top1_accuracy"],
        "macs": executed,
        "macs_ratio_to_twin": executed / twin_macs,
        "flops_target": report["flags"].get("flops_target") if report["flags"].get(
            "model", "").startswith("dmnn") or report["flags"].get("early_exits") else None,
        "flops_ratio": report["flops_ratio"],
        "macs_ratio_std_to_twin": spread,
        "constant_gate_share": dynamics.get("constant_gate_share"),
        "distinct_costs": dynamics.get("distinct_costs"),
        "ratio_correct_confident": dynamics.get("flops_ratio_correct_confident"),
        "ratio_misclassified": dynamics.get("flops_ratio_misclassified"),
        "latency_ratio_median": latency["twin"][0],
        "latency_ratio_mean": latency["twin"][1],
        "latency_ratio_median_to_static_s0": latency["static_s0"][0],
        "step_time_ratio": step_ratio,
        "latency_order": ROTATED,
        "train_images": report["steps_per_epoch"] * report["flags"]["batch_size"]
        * report["flags"]["epochs"] + (
            twin_report["steps_per_epoch"] * twin_report["flags"]["batch_size"]
            * twin_report["flags"]["epochs"] if twin_report else 0),
        "train_seconds": report["train_seconds"] + (twin_report["train_seconds"]
                                                    if twin_report else 0.0),
        "epochs": report["flags"]["epochs"],
        "twin_epochs": twin_report["flags"]["epochs"] if twin_report else 0,
        # a resumed run times only the epochs of its last process (`epochs_run`)
        "timed_epochs": len(report["epochs_run"]) + (len(twin_report["epochs_run"])
                                                     if twin_report else 0),
    }


def load_results():
    """The results file; rows measured before the deeper family are completed (all against static_s0)."""
    if not os.path.exists(RESULTS):
        return {}
    with open(RESULTS) as f:
        results = json.load(f)
    for result in results.values():
        result.setdefault("reference", "static_s0")
        result.setdefault("latency_ratio_median_to_static_s0", result["latency_ratio_median"])
    return results


def save_results(results):
    from benchmarks.report import save_json

    save_json(RESULTS, results)


def fmt(value, spec, missing="-"):
    return missing if value is None else format(value, spec)


def section(results):
    """The markdown body of the section, from every measured row."""
    from benchmarks.report import measured_on

    lines = [
        "Small CIFAR ResNet (stack (1,1,1,1), width 0.25; the twin has 7.33 M MACs), CIFAR-10 "
        "train 50,000 / test 10,000 images; the `d2` rows: stack (2,2,2,2), width 0.2 (their "
        "twin static_d2_s0 has 7.26 M MACs), their ratios taken against it. `latency` = TFLite "
        f"batch-1, 1 thread, learned gates, {LATENCY_IMAGES} test images, relative to the twin "
        "(median of per-image medians; mean; for d2 rows also the median x static_s0); "
        "`step` = paired training-step time relative to the twin's (teacher or all-on pass included); "
        "`cost` = training images and seconds, the teacher's epochs included. One seed per row "
        "unless the summary says two. Latency is measured image by image, every model in turn, "
        "the first rotating; `*`: measured before that (each model over all the images in turn, "
        "the twin first): measured again both ways, the four in-place rows came out 0.02-0.11 "
        "slower against the twin image by image.",
        "",
        "| row | top-1 | MACs (x twin) | target | MACs std (x twin) | constant gates | distinct "
        "costs | correct-confident / misclassified ratio | latency median / mean | step | cost |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    earlier = [row for row in results if row not in ROWS]
    for row in list(ROWS) + earlier:
        r = results.get(row)
        if r is None:
            lines.append(f"| {row} | not run yet |  |  |  |  |  |  |  |  |  |")
            continue
        lines.append(
            f"| {row} | {100 * r['top1']:.2f}% | {r['macs'] / 1e6:.2f} M ({r['macs_ratio_to_twin']:.2f}) "
            f"| {fmt(r['flops_target'], '.3f')} | {r['macs_ratio_std_to_twin']:.3f} "
            f"| {fmt(r['constant_gate_share'], '.2f')} | {fmt(r['distinct_costs'], 'd')} "
            f"| {fmt(r['ratio_correct_confident'], '.3f')} / {fmt(r['ratio_misclassified'], '.3f')} "
            f"| {r['latency_ratio_median']:.2f} / {r['latency_ratio_mean']:.2f}"
            f"{_to_main(r)}{'' if row == 'static_s0' or r.get('latency_order') == ROTATED else ' *'} "
            f"| {r['step_time_ratio']:.2f} | {r['train_images'] / 1e6:.2f} M, "
            f"{r['train_seconds'] / 60:.0f} min{_timed(r)} |"
        )
    lines += ["", measured_on(results)]
    for row in earlier:
        lines.append(f"\n`{row}`: an earlier variant, not rerun: {results[row].get('note', '')}.")
    for twins in FAMILY_TWINS:
        if twins != MAIN_TWINS and not any(row in results for row in twins):
            continue
        exits = [row for row in results if row in ROWS and ROWS[row].get("twin_share")
                 and twins_of(row) == twins and KINDS["early-exit network"](ROWS[row])]
        for kind in ("DMNN", "early-exit network") if exits else ("DMNN",):
            lines += ["", *verdict(results, twins, kind=kind)]
            aimed = best_dmnn(results, twins=twins, kind=kind)[0]
            within = best_dmnn(results, twins=twins, kind=kind, measured_within=True)[0]
            if within not in (None, aimed):  # the best aimed at 0.6x ran more MACs
                lines += ["", *verdict(results, twins, kind=kind, measured_within=True)]
    return "\n".join(lines)


def _timed(result):
    """The cost cell's note when the time covers fewer epochs than were trained (a resumed run)."""
    epochs = result["epochs"] + result["twin_epochs"]
    timed = result.get("timed_epochs", epochs)
    return "" if timed >= epochs else f" ({timed} of {epochs} epochs timed: resumed)"


def _to_main(result):
    """The latency cell's addition for rows measured against another twin than static_s0."""
    if result.get("reference", "static_s0") == "static_s0":
        return ""
    return f" ({result['latency_ratio_median_to_static_s0']:.2f} x static_s0)"


def _mean(results, rows, key="top1"):
    values = [results[r][key] for r in rows if r in results]
    return (float(np.mean(values)), len(values)) if values else (None, 0)


def _seeds(family):
    """The rows of one recipe (`dmnn_t050` -> `dmnn_t050_s0`, `dmnn_t050_s1`)."""
    return [row for row in ROWS if row.rsplit("_s", 1)[0] == family]


# The kinds of dynamic network judged apart: the DMNNs (multi-path gates) and early exits.
KINDS = {"DMNN": lambda spec: not spec.get("early_exits"),
         "early-exit network": lambda spec: bool(spec.get("early_exits"))}


def best_dmnn(results, max_share=0.6, twins=MAIN_TWINS, kind="DMNN", measured_within=False):
    """The new-recipe rows of `kind` (one per seed) with the best mean top-1 aimed at <= max_share x the twin's MACs.

    Only recipes aimed at a share of the twin's MACs compete: fine-tuned from
    `twins` (or from a network pre-trained in their place), or trained from the
    start in their family (`exits_joint`). The targets are judged on two
    seeds, so a recipe measured on two seeds beats one measured on one,
    whatever their means. `measured_within`: only recipes whose mean measured
    MACs are <= max_share x the twin's compete.
    """
    families = {row.rsplit("_s", 1)[0] for row in ROWS
                if ROWS[row].get("twin_share") and twins_of(row) == twins
                and ROWS[row]["twin_share"] <= max_share and KINDS[kind](ROWS[row])}
    measured = []
    for family in sorted(families):
        rows = [row for row in _seeds(family) if row in results]
        over = rows and _mean(results, rows, "macs_ratio_to_twin")[0] > max_share
        if rows and not (measured_within and over):
            measured.append((min(len(rows), 2), _mean(results, rows)[0], family, rows))
    return max(measured)[2:] if measured else (None, [])


def twins_trained_for(epochs, twins, results):
    """The twins (FAMILY_TWINS) of `twins`' network trained `epochs` epochs, or None if not measured."""
    def network(row):
        return {k: v for k, v in ROWS[row].items() if k not in ("epochs", "seed")}

    return next((family for family in FAMILY_TWINS if network(family[0]) == network(twins[0])
                 and family[0] in results and results[family[0]]["epochs"] == epochs), None)


def verdict(results, twins=MAIN_TWINS, kind="DMNN", measured_within=False):
    """The issue's targets, checked on the rows measured so far, for the networks of `kind` built from `twins`.

    `measured_within`: judges the best recipe whose measured MACs are within
    0.6x (`best_dmnn`), not the best aimed there.
    """
    twin, twin_seeds = _mean(results, list(twins))
    family, rows = best_dmnn(results, twins=twins, kind=kind, measured_within=measured_within)
    if twin is None or family is None:
        return [f"Targets ({twins[0]}): not measured yet (the twin and a {kind} row at <= 0.6x "
                "its MACs)"]
    aimed = "measured" if measured_within else "aimed"
    lines = [f"Targets (best {kind} {aimed} at <= 0.6x the MACs of {twins[0]}: {family}, mean "
             f"over its {len(rows)} measured seed(s); the twin over {twin_seeds}):"]

    def mean(key):
        return _mean(results, rows, key)[0]

    best = mean("top1")
    budget = results[rows[0]]["epochs"] + results[rows[0]]["twin_epochs"]  # the teacher's charged
    twin_epochs = results[twins[0]]["epochs"]
    lines.append(f"- within 0.5 point of the twin ({twin_epochs} epochs; the {kind} {budget} in all): "
                 f"{kind} {100 * best:.2f}% vs twin {100 * twin:.2f}%: "
                 f"{100 * (best - twin):+.3f} points, {'met' if best >= twin - 0.005 else 'missed'}")
    if budget != twin_epochs:  # a user would train the twin as long
        long_twins = twins_trained_for(budget, twins, results)
        if long_twins is None:
            lines.append(f"- within 0.5 point of the twin trained as long ({budget} epochs): "
                         "not measured")
        else:
            long_twin, seeds = _mean(results, list(long_twins))
            lines.append(f"- within 0.5 point of the twin trained as long ({long_twins[0]}, "
                         f"{budget} epochs, {seeds} seed(s)): {kind} {100 * best:.2f}% vs "
                         f"{100 * long_twin:.2f}%: {100 * (best - long_twin):+.3f} points, "
                         f"{'met' if best >= long_twin - 0.005 else 'missed'}")
    statics = {}  # measured against static_s0; a family's seeds (`static_w020_e25`, `..._s1`)
    for r in sorted(results):
        if r.startswith("static_w"):
            statics.setdefault(r.rsplit("_s", 1)[0], []).append(r)
    if statics:  # the static networks nearest in MACs: 15 epochs, and the DMNN's budget in images

        def share(family):  # of this family's twin
            return results[statics[family][0]]["macs"] / results[twins[0]]["macs"]
        nearest = min(statics, key=lambda f: abs(share(f) - mean("macs_ratio_to_twin")))
        dmnn_latency = mean("latency_ratio_median_to_static_s0")
        for equal in sorted(f for f in statics if f.startswith(nearest.split("_e")[0])
                            and results[statics[f][0]]["epochs"] <= budget):  # as long or less
            seeds = statics[equal]
            gap = best - _mean(results, seeds)[0]
            lines.append(f"- >= 1 point above the static net of equal MACs ({equal}, "
                         f"{share(equal):.2f}x, {results[seeds[0]]['epochs']} epochs, "
                         f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}): {100 * gap:+.3f} "
                         f"points, {'met' if gap >= 0.01 else 'missed'}; latency median x "
                         f"static_s0: {kind} {dmnn_latency:.2f}, static "
                         f"{_mean(results, seeds, 'latency_ratio_median')[0]:.2f}")
    macs = mean("macs_ratio_to_twin")
    lines.append(f"- MACs <= 0.6x the twin: {macs:.5f}x, {'met' if macs <= 0.6 else 'missed'}")
    lines.append(f"- learned-gate TFLite latency <= 0.8x (judged on the median: the mean of per-image "
                 f"times swings with the other jobs on the machine): median "
                 f"{mean('latency_ratio_median'):.2f}x, mean {mean('latency_ratio_mean'):.2f}x, "
                 f"{'met' if mean('latency_ratio_median') <= 0.8 else 'missed'}")
    misses = [abs(results[r]["flops_ratio"] - results[r]["flops_target"]) for r in rows]
    lines.append(f"- FLOPs ratio within 0.03 of its target: "
                 + ", ".join(f"{results[r]['flops_ratio']:.3f}" for r in rows)
                 + f" vs {results[rows[0]]['flops_target']:.3f}, "
                 f"{'met' if max(misses) <= 0.03 else 'missed'}")
    lines.append(f"- constant gates < 1/4: {mean('constant_gate_share'):.2f}, "
                 f"{'met' if mean('constant_gate_share') < 0.25 else 'missed'}; per-image MACs "
                 f"ratio std >= 0.08: {mean('macs_ratio_std_to_twin'):.3f}, "
                 f"{'met' if mean('macs_ratio_std_to_twin') >= 0.08 else 'missed'}")
    return lines


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        print("\n".join(ROWS))
        return
    from benchmarks.report import write_section

    import fcntl

    def write(results, measured=True):
        write_section(SECTION, section(results),
                      command="TFDS_DATA_DIR=../shared/tfds python -m benchmarks.cifar10_pareto "
                              "[--only ROW,...]", measured=measured)

    if args.rewrite:
        write(load_results(), measured=False)
        return
    for row in args.only:
        # Measured against these (latency_ratios, measure_row): missing, the training is wasted.
        missing = [name for name in dict.fromkeys(("static_s0", reference(row)))
                   if name != row and not os.path.exists(model_path(name))]
        for name in list(missing):
            preset = restore_from_preset(name)
            if preset:
                print(f"{model_path(name)}: restored from the shipped preset {preset}", flush=True)
                missing.remove(name)
        if missing:
            raise SystemExit(f"row {row} is measured against {missing}, not trained here "
                             f"({RUNS}): run --only {','.join(missing + [row])}")
        report = train_row(row)
        measured = measure_row(row, report)
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        with open(RESULTS + ".lock", "w") as lock:  # parts may run side by side
            fcntl.flock(lock, fcntl.LOCK_EX)
            results = load_results()
            results[row] = measured
            save_results(results)
            write(results)
        print(json.dumps(measured, indent=2), flush=True)


if __name__ == "__main__":
    main()
