namespace Grpc.Backup.Conformance.Internal;

/// <summary>The report: one line per check (outcome, name, seconds, reason), then the totals.</summary>
internal static class ResultTable
{
    public static void Write(TextWriter writer, IReadOnlyList<CheckResult> results)
    {
        int width = Math.Max(5, results.Count == 0 ? 0 : results.Max(r => r.Name.Length));
        writer.WriteLine($"{"RESULT",-6} {"CHECK".PadRight(width)} {"TIME",7}  DETAIL");
        foreach (CheckResult result in results)
        {
            string outcome = result.Outcome switch
            {
                CheckOutcome.Passed => "PASS",
                CheckOutcome.Failed => "FAIL",
                _ => "SKIP",
            };
            writer.WriteLine($"{outcome,-6} {result.Name.PadRight(width)} {result.Duration.TotalSeconds,6:0.0}s  {result.Detail.ReplaceLineEndings(" ")}");
        }
        writer.WriteLine();
        writer.WriteLine($"{results.Count(r => r.Outcome == CheckOutcome.Passed)} passed, {results.Count(r => r.Outcome == CheckOutcome.Failed)} failed, " +
            $"{results.Count(r => r.Outcome == CheckOutcome.Skipped)} skipped");
    }
}
