# plot.gp — a trainer's --log as curves: the loss (per step, and each epoch's
# train and test loss) and the accuracy (train and test, per epoch), against
# the epoch, side by side in one PNG.
#
#   gnuplot -e "log='train.csv'; out='train.png'" tools/plot.gp
#   make plot LOG=train.csv                      (the same, installing gnuplot)
#
# The log's columns: kind (step or epoch), epoch, step, loss, accuracy,
# test_loss, test_accuracy, lr, seconds. A step row's epoch is fractional.
if (!exists("log")) log = "build/train.csv"
if (!exists("out")) out = "build/train.png"

set datafile separator ","
set datafile missing ""
set terminal pngcairo size 1200,480 font "sans,10" noenhanced
set output out
set multiplot layout 1,2 title log
set grid
set key top right
set xlabel "epoch"

steps  = "< grep '^step,' '" . log . "'"
epochs = "< grep '^epoch,' '" . log . "'"

set title "loss"
ema = -1   # the steps' exponential moving average, updated as the rows are read
set logscale y
plot steps  using 2:4 with lines lc rgb "#c6d4e6" title "step", \
     steps  using 2:(ema = ema < 0 ? $4 : 0.98 * ema + 0.02 * $4, ema) lw 2 lc rgb "#7f7f7f" \
            with lines title "step (moving average)", \
     epochs using 2:4 with linespoints lw 2 lc rgb "#1f77b4" pt 7 title "train (epoch)", \
     epochs using 2:6 with linespoints lw 2 lc rgb "#d62728" pt 7 title "test"
unset logscale y

set title "accuracy (%)"
set key bottom right
plot epochs using 2:(100 * $5) with linespoints lw 2 lc rgb "#1f77b4" pt 7 title "train", \
     epochs using 2:(100 * $7) with linespoints lw 2 lc rgb "#d62728" pt 7 title "test"
unset multiplot
