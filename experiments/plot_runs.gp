# Loss and test accuracy against wall time, dense vs reuse, for one network.
# Inputs are the .dat files experiments/summarize_runs.py writes into the
# network's folder (index 0: epoch records, index 1: the finest loss curve;
# events.dat: rung changes of the reuse run, drawn as thin vertical lines).
# Usage: gnuplot -e "dir='runs/x/cifarnet'; net='cifarnet'" experiments/plot_runs.gp
# Writes dir/loss_accuracy.png.
if (!exists("dir")) dir = "."
if (!exists("net")) net = "network"
dense = dir."/plot_dense.dat"
reuse = dir."/plot_reuse.dat"
events = dir."/events.dat"

set terminal pngcairo size 1400,560 font "sans,11"
set output dir."/loss_accuracy.png"
set datafile missing "NaN"
set key bottom left
set grid
set xlabel "wall time (s)"
set multiplot layout 1,2 title net.": dense vs adaptive deep reuse"

has_events = system("grep -vc '^#' ".events." 2>/dev/null || true") + 0
stats dense index 1 using 2 nooutput
ymax = STATS_max
stats reuse index 1 using 2 nooutput
ymax = (STATS_max > ymax) ? STATS_max : ymax
set title "training loss"
set ylabel "loss"
set key top right
if (has_events > 0) {
  plot dense index 1 using 1:2 with lines lw 2 lc rgb "#1f77b4" title "dense", \
       reuse index 1 using 1:2 with lines lw 2 lc rgb "#d62728" title "reuse", \
       events using 1:(ymax) with impulses dt 3 lc rgb "#888888" title "reuse rung change"
} else {
  plot dense index 1 using 1:2 with lines lw 2 lc rgb "#1f77b4" title "dense", \
       reuse index 1 using 1:2 with lines lw 2 lc rgb "#d62728" title "reuse"
}

set title "test accuracy"
set ylabel "accuracy"
set key bottom right
plot dense index 0 using 1:4 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "dense", \
     reuse index 0 using 1:4 with linespoints lw 2 pt 7 lc rgb "#d62728" title "reuse"
unset multiplot
