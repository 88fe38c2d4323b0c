set terminal pngcairo size 1400,600 font "sans,11"
set output "/work/main/bench/results/20261121T235148Z/plot.png"
set datafile missing "NaN"
set multiplot layout 1,2 title "hb benchmark 20261121T235148Z (Intel(R) Xeon(R) Processor, 2 cores)"
set key top left
set grid
set xrange [0:116.2]
set xlabel "offered heartbeats/s (thousands; last point = max)"
set ylabel "achieved heartbeats/s (thousands)"
set title "Throughput"
set arrow from 0,77.848 to 116.2,77.848 nohead dt 2 lc rgb "gray40"
set label "broker-only ceiling 77.8k/s" at 2.32,80.183 tc rgb "gray40"
plot x title "offered" dt 3 lc rgb "gray60", \
  "/work/main/bench/results/20261121T235148Z/plot.dat" index 0 using 1:2 with linespoints lc rgb "#1f77b4" pt 7 lw 2 title "hb-consumer", \
  "/work/main/bench/results/20261121T235148Z/plot.dat" index 1 using 1:2 with linespoints lc rgb "#2ca02c" pt 5 lw 2 title "floor (paho, does nothing)", \
  "/work/main/bench/results/20261121T235148Z/plot.dat" index 2 using 1:2 with linespoints lc rgb "#ff7f0e" pt 9 lw 2 title "Python peer", \
  "/work/main/bench/results/20261121T235148Z/plot.dat" index 3 using 1:2 with linespoints lc rgb "#9467bd" pt 11 lw 2 title "Node.js peer"
unset arrow
unset label
set title "CPU time per heartbeat (user + system)"
set ylabel "µs per heartbeat (log scale)"
set logscale y
set key top right
plot "/work/main/bench/results/20261121T235148Z/plot.dat" index 0 using 1:3 with linespoints lc rgb "#1f77b4" pt 7 lw 2 title "hb-consumer", \
  "/work/main/bench/results/20261121T235148Z/plot.dat" index 1 using 1:3 with linespoints lc rgb "#2ca02c" pt 5 lw 2 title "floor (paho, does nothing)", \
  "/work/main/bench/results/20261121T235148Z/plot.dat" index 2 using 1:3 with linespoints lc rgb "#ff7f0e" pt 9 lw 2 title "Python peer", \
  "/work/main/bench/results/20261121T235148Z/plot.dat" index 3 using 1:3 with linespoints lc rgb "#9467bd" pt 11 lw 2 title "Node.js peer"
unset multiplot
