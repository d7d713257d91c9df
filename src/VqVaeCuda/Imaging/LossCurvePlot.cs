namespace VqVaeCuda.Imaging;

/// <summary>Line plots of training curves (ScottPlot), one series per metric, against the step.</summary>
public static class LossCurvePlot
{
    /// <summary>Writes a PNG with one line per series.</summary>
    /// <param name="path">The PNG to write.</param>
    /// <param name="title">Title above the plot.</param>
    /// <param name="series">Name → (steps, values).</param>
    /// <param name="logScale">Plot log10 of the values (losses that fall by orders of magnitude).</param>
    public static void SavePng(string path, string title, IReadOnlyDictionary<string, (double[] Steps, double[] Values)> series, bool logScale = true)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (name, (steps, values)) in series)
        {
            if (steps.Length == 0) continue;
            var ys = logScale ? values.Select(v => Math.Log10(Math.Max(v, 1e-12))).ToArray() : values;
            var line = plot.Add.Scatter(steps, ys);
            line.LegendText = name;
        }
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel(logScale ? "log10(value)" : "value");
        plot.ShowLegend();
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, 900, 520);
    }
}
