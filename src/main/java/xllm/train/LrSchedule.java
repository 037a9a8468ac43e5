package xllm.train;

/**
 * Learning rate per optimiser step. {@code at(step)} is the rate used by optimiser step {@code step}, counted from 0:
 * a training loop calls {@code adamW.step(schedule.at(adamW.steps()))}.
 *
 * <p>Both schedules are records, so a run's log and checkpoint can record the exact schedule (its {@code toString}).
 * Tested in {@code LrScheduleTest} against {@code tools/reference/make_optim_fixtures.py}, which transcribes the
 * LAVIS and fairseq formulas in Python.
 */
public interface LrSchedule {

    /** Learning rate for optimiser step {@code step} (0-based). */
    double at(long step);

    /**
     * LAVIS / BLIP-2 {@code linear_warmup_cosine_lr}, as X-LLM configures it ({@code init_lr}, {@code min_lr},
     * {@code warmup_lr}, {@code warmup_steps}), defined per optimiser step. See {@link WarmupCosine}.
     */
    static LrSchedule warmupCosine(double initLr, double minLr, double warmupStartLr, long warmupSteps, long totalSteps) {
        return new WarmupCosine(initLr, minLr, warmupStartLr, warmupSteps, totalSteps);
    }

    /**
     * Tri-stage schedule for the CIF speech model: linear warm-up from 0 to {@code peakLr}, hold, exponential decay to
     * {@code finalLr}, then constant. fairseq {@code tri_stage} with {@code init_lr_scale = 0} and
     * {@code final_lr_scale = finalLr / peakLr}. See {@link TriStage}.
     */
    static LrSchedule warmupHoldDecay(double peakLr, long warmupSteps, long holdSteps, long decaySteps, double finalLr) {
        return new TriStage(0, peakLr, finalLr, warmupSteps, holdSteps, decaySteps);
    }

    /**
     * LAVIS {@code LinearWarmupCosineLRScheduler} made step-based.
     *
     * <p>LAVIS (lavis/common/optims.py, copied unchanged into X-LLM's xllm/common/optims.py) calls
     * {@code step(cur_epoch, cur_step)} before every iteration. In epoch 0 it applies
     * {@code warmup_lr_schedule: lr = min(init_lr, warmup_start_lr + (init_lr - warmup_start_lr) * cur_step / max(warmup_steps, 1))}
     * (so after the warm-up, epoch 0 stays at {@code init_lr}); from epoch 1 on it applies, once per epoch,
     * {@code cosine_lr_schedule: lr = (init_lr - min_lr) * 0.5 * (1 + cos(pi * epoch / max_epoch)) + min_lr}.
     * The cosine therefore moves once per data epoch, and LAVIS counts warm-up in data iterations, not optimiser
     * steps. X-LLM's image stage 2 ({@code max_epoch: 2}, {@code warmup_steps: 6000}, {@code accum_grad_iters: 32})
     * thus warms up over 6000 micro-batches (~188 updates), holds {@code init_lr} for the rest of epoch 0 and runs
     * epoch 1 at the cosine's midpoint {@code (init_lr + min_lr) / 2}.
     *
     * <p>Ours, for optimiser step {@code s} (0-based), with {@code W = warmupSteps}, {@code T = totalSteps}:
     * <pre>
     *   s &lt; W:      lr = min(initLr, warmupStartLr + (initLr - warmupStartLr) * s / max(W, 1))      (LAVIS warm-up, verbatim)
     *   W &lt;= s &lt; T: lr = (initLr - minLr) * 0.5 * (1 + cos(pi * (s - W) / (T - W))) + minLr    (LAVIS cosine, epoch := s - W, max_epoch := T - W)
     *   s &gt;= T:     lr = minLr                                                                  (LAVIS would rise again past max_epoch)
     * </pre>
     * i.e. the LAVIS cosine with one "epoch" per optimiser step, started when the warm-up ends instead of at epoch 1:
     * step {@code W} runs at exactly {@code initLr}, step {@code T - 1} just above {@code minLr}, matching LAVIS's first
     * cosine epoch ({@code cos 0}) and its last ({@code max_epoch - 1}). The Python reference computes
     * {@code lavis_cosine(epoch=s - W, max_epoch=T - W, ...)} with LAVIS's own function bodies.
     *
     * @param initLr        rate at the end of the warm-up and start of the cosine (X-LLM {@code init_lr})
     * @param minLr         rate the cosine reaches at {@code totalSteps} (X-LLM {@code min_lr})
     * @param warmupStartLr rate of step 0 (X-LLM {@code warmup_lr}); LAVIS's "-1 = initLr" is the caller's business
     * @param warmupSteps   linear warm-up length; 0 starts the cosine at step 0
     * @param totalSteps    optimiser steps of the whole run; must exceed {@code warmupSteps}
     */
    record WarmupCosine(double initLr, double minLr, double warmupStartLr, long warmupSteps, long totalSteps)
            implements LrSchedule {
        public WarmupCosine {
            if (!(initLr >= 0 && minLr >= 0 && warmupStartLr >= 0)) {
                throw new IllegalArgumentException("learning rates must be >= 0: init " + initLr + ", min " + minLr
                        + ", warm-up start " + warmupStartLr);
            }
            if (warmupSteps < 0 || totalSteps <= warmupSteps) {
                throw new IllegalArgumentException("need 0 <= warmupSteps < totalSteps: " + warmupSteps + ", " + totalSteps);
            }
        }

        @Override
        public double at(long step) {
            if (step < 0) throw new IllegalArgumentException("step must be >= 0: " + step);
            if (step < warmupSteps) {
                return Math.min(initLr, warmupStartLr + (initLr - warmupStartLr) * step / Math.max(warmupSteps, 1));
            }
            if (step >= totalSteps) return minLr;
            long epoch = step - warmupSteps;
            long maxEpoch = totalSteps - warmupSteps;
            return (initLr - minLr) * 0.5 * (1.0 + Math.cos(Math.PI * epoch / maxEpoch)) + minLr;
        }
    }

    /**
     * fairseq {@code TriStageLRSchedule} (fairseq/optim/lr_scheduler/tri_stage_lr_scheduler.py; the schedule of
     * SpecAugment, arXiv:1904.08779, and of FunASR/ESPnet "tri_stage"). fairseq calls {@code step_update(n)} with the
     * number of updates done, and update {@code n} (0-based) runs at that rate, so {@code at(n) = step_update(n)}:
     * <pre>
     *   n &lt; W:             lr = initLr + (peakLr - initLr) / W * n
     *   n &lt; W + H:         lr = peakLr
     *   n &lt;= W + H + D:    lr = peakLr * exp(-(-ln(finalLr / peakLr) / D) * (n - W - H))   (= finalLr at n = W + H + D)
     *   otherwise:         lr = finalLr
     * </pre>
     * With {@code initLr = 0} step 0 runs at rate 0, as fairseq does with {@code init_lr_scale = 0}.
     *
     * @param initLr      rate of step 0 ({@code init_lr_scale * lr})
     * @param peakLr      rate held after the warm-up ({@code lr})
     * @param finalLr     rate after the decay ({@code final_lr_scale * lr}), in (0, peakLr]
     * @param warmupSteps W
     * @param holdSteps   H
     * @param decaySteps  D
     */
    record TriStage(double initLr, double peakLr, double finalLr, long warmupSteps, long holdSteps, long decaySteps)
            implements LrSchedule {
        public TriStage {
            if (!(peakLr > 0 && initLr >= 0 && initLr <= peakLr && finalLr > 0 && finalLr <= peakLr)) {
                throw new IllegalArgumentException("need 0 <= initLr <= peakLr and 0 < finalLr <= peakLr: init "
                        + initLr + ", peak " + peakLr + ", final " + finalLr);
            }
            if (warmupSteps < 0 || holdSteps < 0 || decaySteps < 0) {
                throw new IllegalArgumentException("stage lengths must be >= 0: " + warmupSteps + ", " + holdSteps
                        + ", " + decaySteps);
            }
        }

        @Override
        public double at(long step) {
            if (step < 0) throw new IllegalArgumentException("step must be >= 0: " + step);
            if (step < warmupSteps) {
                double warmupRate = (peakLr - initLr) / warmupSteps;
                return initLr + warmupRate * step;
            }
            long offset = warmupSteps;
            if (step < offset + holdSteps) return peakLr;
            offset += holdSteps;
            if (step <= offset + decaySteps) {
                // fairseq divides by decay_steps unguarded; with D = 0 the only decay step is n = W + H, at peakLr.
                double decayFactor = decaySteps == 0 ? 0 : -Math.log(finalLr / peakLr) / decaySteps;
                return peakLr * Math.exp(-decayFactor * (step - offset));
            }
            return finalLr;
        }
    }
}
