# plot.gp — a trainer's --log as curves: the loss (per step, and each epoch's
# train and test loss) and the accuracy (train and test, per epoch), against
# the epoch, side by side in one PNG.
#
#   gnuplot -e "log='train.csv'; out='train.png'" tools/plot.gp
#   make plot LOG=train.csv                      (the same, installing gnuplot)
#
# The log's columns: kind (step or epoch), epoch, step, loss, accuracy,
# test_loss, test_accuracy, lr, seconds. A step row's epoch is fractional.
# Whatever a log holds is drawn: a regression model's has no accuracy (one
# panel, the loss), a run shorter than an epoch no epoch rows.
if (!exists("log")) log = "build/lenet_ce.csv"
if (!exists("out")) out = "build/lenet_ce.png"

set datafile separator ","
set datafile missing ""
set terminal pngcairo size 1200,480 font "sans,10" noenhanced
set output out
steps  = "< grep '^step,' '" . log . "'"
epochs = "< grep '^epoch,' '" . log . "'"
# how many rows of each kind, and how many epoch rows have an accuracy, a test loss
count(cmd) = int(system(cmd . " | wc -l"))
nsteps  = count("grep '^step,' '" . log . "'")
nepochs = count("grep '^epoch,' '" . log . "'")
nacc    = count("grep '^epoch,' '" . log . "' | cut -d, -f5 | grep .")
ntest   = count("grep '^epoch,' '" . log . "' | cut -d, -f6 | grep .")
if (nsteps + nepochs == 0) print "plot.gp: " . log . " holds no step or epoch rows"; exit status 1

if (nacc > 0) { set multiplot layout 1,2 title log } else { set multiplot layout 1,1 title log }
set grid
set key top right
set xlabel "epoch"

set title "loss"
ema = -1   # the steps' exponential moving average, updated as the rows are read
set logscale y
# the curves there are data for
S = nsteps > 0 ? 1 : 0
E = nepochs > 0 ? 1 : 0
T = ntest > 0 ? 1 : 0
if (S && E && T) {
    plot steps  using 2:4 with lines lc rgb "#c6d4e6" title "step", \
         steps  using 2:(ema = ema < 0 ? $4 : 0.98 * ema + 0.02 * $4, ema) lw 2 lc rgb "#7f7f7f" \
                with lines title "step (moving average)", \
         epochs using 2:4 with linespoints lw 2 lc rgb "#1f77b4" pt 7 title "train (epoch)", \
         epochs using 2:6 with linespoints lw 2 lc rgb "#d62728" pt 7 title "test"
} else { if (S && E) {
    plot steps  using 2:4 with lines lc rgb "#c6d4e6" title "step", \
         steps  using 2:(ema = ema < 0 ? $4 : 0.98 * ema + 0.02 * $4, ema) lw 2 lc rgb "#7f7f7f" \
                with lines title "step (moving average)", \
         epochs using 2:4 with linespoints lw 2 lc rgb "#1f77b4" pt 7 title "train (epoch)"
} else { if (S) {
    plot steps  using 2:4 with lines lc rgb "#c6d4e6" title "step", \
         steps  using 2:(ema = ema < 0 ? $4 : 0.98 * ema + 0.02 * $4, ema) lw 2 lc rgb "#7f7f7f" \
                with lines title "step (moving average)"
} else {
    plot epochs using 2:4 with linespoints lw 2 lc rgb "#1f77b4" pt 7 title "train (epoch)"
} } }
unset logscale y

if (nacc > 0) {
    set title "accuracy (%)"
    set key bottom right
    if (T) {
        plot epochs using 2:(100 * $5) with linespoints lw 2 lc rgb "#1f77b4" pt 7 title "train", \
             epochs using 2:(100 * $7) with linespoints lw 2 lc rgb "#d62728" pt 7 title "test"
    } else {
        plot epochs using 2:(100 * $5) with linespoints lw 2 lc rgb "#1f77b4" pt 7 title "train"
    }
}
unset multiplot
