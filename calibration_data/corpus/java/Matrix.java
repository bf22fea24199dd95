import java.util.Arrays;

/**
 * Dense, immutable matrix of doubles with the usual linear algebra helpers.
 */
public final class Matrix {

    private static final double EPS = 1e-12;

    private final int rows;
    private final int cols;
    private final double[] data; // row-major

    private Matrix(int rows, int cols, double[] data) {
        this.rows = rows;
        this.cols = cols;
        this.data = data;
    }

    public static Matrix of(double[][] values) {
        int r = values.length;
        int c = values[0].length;
        double[] d = new double[r * c];
        for (int i = 0; i < r; i++) {
            if (values[i].length != c) {
                throw new IllegalArgumentException("ragged row " + i);
            }
            System.arraycopy(values[i], 0, d, i * c, c);
        }
        return new Matrix(r, c, d);
    }

    public static Matrix identity(int n) {
        double[] d = new double[n * n];
        for (int i = 0; i < n; i++) {
            d[i * n + i] = 1.0;
        }
        return new Matrix(n, n, d);
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    public double get(int r, int c) {
        return data[r * cols + c];
    }

    public Matrix transpose() {
        double[] d = new double[data.length];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                d[j * rows + i] = data[i * cols + j];
            }
        }
        return new Matrix(cols, rows, d);
    }

    /**
     * Matrix product. Loops are ordered i-k-j so the innermost loop walks both
     * operands sequentially in memory, which is noticeably faster than i-j-k.
     */
    public Matrix times(Matrix other) {
        if (cols != other.rows) {
            throw new IllegalArgumentException(
                    "shape mismatch: " + shape() + " x " + other.shape());
        }
        int n = other.cols;
        double[] out = new double[rows * n];
        for (int i = 0; i < rows; i++) {
            for (int k = 0; k < cols; k++) {
                double a = data[i * cols + k];
                if (a == 0.0) {
                    continue;
                }
                int rowOffset = k * n;
                for (int j = 0; j < n; j++) {
                    out[i * n + j] += a * other.data[rowOffset + j];
                }
            }
        }
        return new Matrix(rows, n, out);
    }

    /** Determinant via Gaussian elimination with partial pivoting. */
    public double determinant() {
        requireSquare();
        double[][] a = toArray();
        int n = rows;
        double det = 1.0;
        for (int col = 0; col < n; col++) {
            int pivot = pivotRow(a, col);
            if (Math.abs(a[pivot][col]) < EPS) {
                return 0.0;
            }
            if (pivot != col) {
                double[] tmp = a[pivot];
                a[pivot] = a[col];
                a[col] = tmp;
                det = -det;
            }
            det *= a[col][col];
            for (int r = col + 1; r < n; r++) {
                double factor = a[r][col] / a[col][col];
                for (int c = col; c < n; c++) {
                    a[r][c] -= factor * a[col][c];
                }
            }
        }
        return det;
    }

    /** Inverse using Gauss-Jordan elimination on the augmented matrix [A | I]. */
    public Matrix inverse() {
        requireSquare();
        int n = rows;
        double[][] aug = new double[n][2 * n];
        for (int i = 0; i < n; i++) {
            System.arraycopy(data, i * n, aug[i], 0, n);
            aug[i][n + i] = 1.0;
        }
        for (int col = 0; col < n; col++) {
            int pivot = pivotRow(aug, col);
            if (Math.abs(aug[pivot][col]) < EPS) {
                throw new ArithmeticException("matrix is singular");
            }
            double[] tmp = aug[pivot];
            aug[pivot] = aug[col];
            aug[col] = tmp;

            double p = aug[col][col];
            for (int c = 0; c < 2 * n; c++) {
                aug[col][c] /= p;
            }
            for (int r = 0; r < n; r++) {
                if (r == col) {
                    continue;
                }
                double factor = aug[r][col];
                for (int c = 0; c < 2 * n; c++) {
                    aug[r][c] -= factor * aug[col][c];
                }
            }
        }
        double[] out = new double[n * n];
        for (int i = 0; i < n; i++) {
            System.arraycopy(aug[i], n, out, i * n, n);
        }
        return new Matrix(n, n, out);
    }

    public boolean approxEquals(Matrix other, double tolerance) {
        if (rows != other.rows || cols != other.cols) {
            return false;
        }
        for (int i = 0; i < data.length; i++) {
            if (Math.abs(data[i] - other.data[i]) > tolerance) {
                return false;
            }
        }
        return true;
    }

    private static int pivotRow(double[][] a, int col) {
        int best = col;
        for (int r = col + 1; r < a.length; r++) {
            if (Math.abs(a[r][col]) > Math.abs(a[best][col])) {
                best = r;
            }
        }
        return best;
    }

    private double[][] toArray() {
        double[][] a = new double[rows][];
        for (int i = 0; i < rows; i++) {
            a[i] = Arrays.copyOfRange(data, i * cols, (i + 1) * cols);
        }
        return a;
    }

    private void requireSquare() {
        if (rows != cols) {
            throw new IllegalStateException("matrix is not square: " + shape());
        }
    }

    private String shape() {
        return rows + "x" + cols;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < rows; i++) {
            sb.append(i == 0 ? "[" : " ");
            for (int j = 0; j < cols; j++) {
                sb.append(String.format("%9.4f", get(i, j)));
            }
            sb.append(i == rows - 1 ? " ]" : "\n");
        }
        return sb.toString();
    }

    public static void main(String[] args) {
        Matrix a = Matrix.of(new double[][] {
            {4, 7, 2},
            {3, 6, 1},
            {2, 5, 3},
        });
        System.out.println("A =\n" + a);
        System.out.println("det(A) = " + a.determinant());
        Matrix inv = a.inverse();
        System.out.println("A^-1 =\n" + inv);
        System.out.println("A * A^-1 == I ? " + a.times(inv).approxEquals(identity(3), 1e-9));

    }
}
