<?php
// CPU work: counts primes below ?n (default 20000).
header('X-Worker: ' . getmypid());
$n = (int)($_GET['n'] ?? 20000);
$count = 0;
for ($i = 2; $i < $n; $i++) {
    $prime = true;
    for ($j = 2; $j * $j <= $i; $j++) {
        if ($i % $j === 0) { $prime = false; break; }
    }
    if ($prime) $count++;
}
echo "primes below $n: $count\n";
