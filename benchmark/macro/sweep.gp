# Renders the concurrency sweep of benchmark/macro/run.sh: requests/s and p99 latency against
# concurrency, fcgi bench vs wrk -> nginx.
# gnuplot -e "datafile='docs/benchmarks-sweep.dat'; outfile='docs/benchmarks-sweep.svg'" benchmark/macro/sweep.gp
if (!exists("datafile")) datafile = 'docs/benchmarks-sweep.dat'
if (!exists("outfile")) outfile = 'docs/benchmarks-sweep.svg'
set terminal svg size 900,420 dynamic font "sans,12" background rgb "white"
set output outfile
set multiplot layout 1,2 title "hello.php, php-fpm pm=static 4 workers, unix socket"
set logscale x 2
set xlabel "concurrency (requests in flight)"
set grid
set key bottom right
set xrange [0.8:80]
set xtics (1, 4, 16, 64)
set title "throughput"
set ylabel "requests/s"
set yrange [0:*]
plot datafile using 1:2 with linespoints lw 2 pt 7 title "fcgi bench (pool of <= 4)", \
     datafile using 1:4 with linespoints lw 2 pt 5 title "wrk -> nginx"
set title "p99 latency"
set key top left
set ylabel "p99 (ms)"
set logscale y 10
set yrange [*:*]
plot datafile using 1:3 with linespoints lw 2 pt 7 title "fcgi bench (pool of <= 4)", \
     datafile using 1:5 with linespoints lw 2 pt 5 title "wrk -> nginx"
unset multiplot
