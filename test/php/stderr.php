<?php
// Logs to FastCGI STDERR around the body. With ?bulk=N it first logs N lines of 1000 'w's.
for ($i = 0; $i < (int)($_GET['bulk'] ?? 0); ++$i)
    error_log(str_repeat('w', 1000));
error_log('first message');
echo "body-start\n";
error_log('second message');
echo "body-end\n";
