using Grpc.Backup.Protocol.Containers;

namespace Grpc.Backup.Containers.Tests;

public sealed class ExcludePatternTests
{
    [Fact]
    public void Anchors_leading_slash_patterns_at_the_container_root_and_matches_others_anywhere()
    {
        IReadOnlyList<string> arguments = ExcludePatterns.ToTarArguments(["/tmp/?*", "*.log", "/var/cache/", "/var/run/?*.pid", "cache/**"]);

        Assert.Equal(
        [
            "--wildcards", "--wildcards-match-slash",
            "--anchored", "--exclude=./tmp/?*", "--exclude=./var/cache", "--exclude=./var/run/?*.pid",
            "--no-anchored", "--exclude=*.log", "--exclude=cache/**", "--exclude=lost+found",
        ], arguments);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("")]
    [InlineData("/**")]
    [InlineData("*")]
    [InlineData("a\nb")]
    public void Refuses_patterns_that_exclude_everything_or_hide_control_characters(string pattern)
    {
        Assert.Throws<ArgumentException>(() => ExcludePatterns.ToTarArguments([pattern]));
    }
}
