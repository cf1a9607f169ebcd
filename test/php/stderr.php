<?php
// Logs to FastCGI STDERR around the body.
error_log('first message');
echo "body-start\n";
error_log('second message');
echo "body-end\n";
