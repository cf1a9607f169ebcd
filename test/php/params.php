<?php
// Counts the params named X_P_* and the bytes of their values.
$count = 0;
$bytes = 0;
foreach ($_SERVER as $k => $v) {
    if (strncmp($k, 'X_P_', 4) === 0) {
        $count++;
        $bytes += strlen($v);
    }
}
echo "$count $bytes\n";
