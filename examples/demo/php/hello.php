<?php
// The smallest job: used by the examples in examples/.
header('X-Worker: ' . getmypid());
echo "Hello, world!\n";
