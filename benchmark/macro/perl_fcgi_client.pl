#!/usr/bin/perl
# One of benchmark/macro/clients.sh's clients: Perl's FCGI::Client (Debian's libfcgi-client-perl),
# the FastCGI client library on CPAN. It opens a connection per request (it sends no
# FCGI_KEEP_CONN and closes after END_REQUEST) and blocks, so concurrency is processes.
#
# Usage: perl_fcgi_client.pl SOCKET PROCESSES SECONDS SCRIPT_ROOT OUT_PREFIX
# Each process requests SCRIPT_ROOT/hello.php until SECONDS have passed and writes
# OUT_PREFIX.N: "ok failed" on the first line, then each answered request's latency in µs.
use strict;
use warnings;
use FCGI::Client;
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use Time::HiRes qw(time);

my ($socket, $processes, $seconds, $root, $out) = @ARGV;
die "usage: $0 SOCKET PROCESSES SECONDS SCRIPT_ROOT OUT_PREFIX\n" unless defined $out;

# The params fcgi bench derives for the same request, headers included (FLOOR_HEADERS), as
# benchmark/floor/epoll_floor_client.c lists them; only SERVER_SOFTWARE differs.
my %env = (
    GATEWAY_INTERFACE => 'CGI/1.1',
    SERVER_PROTOCOL   => 'HTTP/1.1',
    SERVER_SOFTWARE   => 'FCGI::Client',
    REQUEST_METHOD    => 'GET',
    SCRIPT_FILENAME   => "$root/hello.php",
    SCRIPT_NAME       => '/hello.php',
    REQUEST_URI       => '/hello.php',
    DOCUMENT_ROOT     => $root,
    QUERY_STRING      => '',
    CONTENT_LENGTH    => '0',
    CONTENT_TYPE      => '',
    REMOTE_ADDR       => '127.0.0.1',
    REMOTE_PORT       => '0',
    SERVER_ADDR       => '127.0.0.1',
    SERVER_NAME       => 'localhost',
    SERVER_PORT       => '80',
    HTTP_HOST         => 'localhost',
    HTTP_USER_AGENT   => 'asio-fcgi-bench',
    HTTP_ACCEPT       => '*/*',
    HTTP_ACCEPT_ENCODING => 'gzip',
);

sub run_one {
    my ($n) = @_;
    my $deadline = time + $seconds;
    my ($ok, $failed) = (0, 0);
    my @latency;
    while (time < $deadline) {
        my $start = time;
        my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $socket);
        my ($stdout) = $sock ? eval { FCGI::Client::Connection->new(sock => $sock)->request(\%env, '') } : ();
        if (defined $stdout && index($stdout, 'Hello, world!') >= 0) {
            ++$ok;
            push @latency, int((time - $start) * 1e6);
        } else {
            ++$failed;
        }
    }
    open(my $fh, '>', "$out.$n") or die "$out.$n: $!";
    print $fh "$ok $failed\n", map { "$_\n" } @latency;
    close $fh;
}

my @children;
for my $n (1 .. $processes) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        run_one($n);
        exit 0;
    }
    push @children, $pid;
}
waitpid($_, 0) for @children;
